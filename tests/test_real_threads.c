/* One runner shared by several threads at once, while other threads
 * hammer malloc, stdio and mutexes (RELIABILITY R14, fork safety). */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPAWNERS 4
#define HAMMERS 8
#define RUNS_PER_THREAD 60

typedef struct shared {
  pk_runner *runner;
  atomic_int failures;
  atomic_int done_spawners;
  pthread_mutex_t mu;
} shared;

typedef struct spawner_arg {
  shared *sh;
  int id;
} spawner_arg;

static void *spawner(void *arg) {
  spawner_arg *a = arg;
  for (int i = 0; i < RUNS_PER_THREAD; i++) {
    char want[64], tag[32];
    snprintf(tag, sizeof(tag), "t%d-%d", a->id, i);
    snprintf(want, sizeof(want), "%s", tag);
    pk_cmd *cmd;
    if (pk_cmd_new(PK_FIXTURE, &cmd) != 0) {
      atomic_fetch_add(&a->sh->failures, 1);
      continue;
    }
    pk_cmd_arg(cmd, "echo");
    pk_cmd_arg(cmd, tag);
    pk_cmd_set_timeout(cmd, 20000, 0, 0); /* a hung child fails the run */
    char *text = NULL;
    int rc = pk_run(a->sh->runner, cmd, &text, NULL);
    if (rc != 0 || text == NULL || strcmp(text, want) != 0)
      atomic_fetch_add(&a->sh->failures, 1);
    pk_free(text);
    pk_cmd_free(cmd);
  }
  atomic_fetch_add(&a->sh->done_spawners, 1);
  return NULL;
}

/* Keep allocator, stdio and a mutex busy until the spawners finish. */
static void *hammer(void *arg) {
  shared *sh = arg;
  char line[128];
  FILE *devnull = fopen("/dev/null", "we");
  while (atomic_load(&sh->done_spawners) < SPAWNERS) {
    void *blocks[16];
    for (int i = 0; i < 16; i++)
      blocks[i] = malloc((size_t)(i + 1) * 1024);
    pthread_mutex_lock(&sh->mu);
    snprintf(line, sizeof(line), "%p", blocks[3]);
    pthread_mutex_unlock(&sh->mu);
    if (devnull != NULL)
      fputs(line, devnull);
    for (int i = 0; i < 16; i++)
      free(blocks[i]);
  }
  if (devnull != NULL)
    fclose(devnull);
  return NULL;
}

static void shared_runner_many_threads(void **state) {
  (void)state;
  pk_mechanism mechs[4];
  int n = pkt_mechanisms(mechs);
  for (int m = 0; m < n; m++) {
    pkt_snapshot snap;
    pkt_snapshot_take(&snap);
    shared sh = {.runner = pkt_runner(mechs[m], 0)};
    pthread_mutex_init(&sh.mu, NULL);
    pthread_t sp[SPAWNERS], hm[HAMMERS];
    spawner_arg args[SPAWNERS];
    for (int i = 0; i < HAMMERS; i++)
      assert_int_equal(pthread_create(&hm[i], NULL, hammer, &sh), 0);
    for (int i = 0; i < SPAWNERS; i++) {
      args[i] = (spawner_arg){&sh, i};
      assert_int_equal(pthread_create(&sp[i], NULL, spawner, &args[i]), 0);
    }
    for (int i = 0; i < SPAWNERS; i++)
      pthread_join(sp[i], NULL);
    for (int i = 0; i < HAMMERS; i++)
      pthread_join(hm[i], NULL);
    print_message("%s: %d runs from %d threads, %d failures\n",
                  pk_mechanism_name(mechs[m]), SPAWNERS * RUNS_PER_THREAD,
                  SPAWNERS, atomic_load(&sh.failures));
    assert_int_equal(atomic_load(&sh.failures), 0);
    pthread_mutex_destroy(&sh.mu);
    pk_runner_free(sh.runner);
    pkt_snapshot_check(&snap);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(shared_runner_many_threads),
  };
  return cmocka_run_group_tests(tests, pkt_setup, NULL);
}
