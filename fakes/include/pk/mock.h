/* processkit cmocka mock runner: replies and argument checks come from
 * cmocka's own expect_* / will_return queues, in the idiom cmocka users
 * know. A separate library (pk::mock, libprocesskit-mock) so that test
 * code using another framework needs no cmocka.
 *
 * How to use:
 *   1. pk_mock_new(&runner) in the test (or its setup) gives a pk_runner
 *      that never spawns; hand it to the code under test.
 *   2. Before each command the code will run, queue what it must look
 *      like and what it answers, as for any cmocka mock:
 *        pk_mock_expect_call("git", "log -n 5");
 *        pk_mock_will_reply(pk_reply_ok("abc fix\n"));
 *      or, parameter by parameter, with cmocka's own macros on the mocked
 *      function pk_mock_run (see "Parameters" below):
 *        expect_string(pk_mock_run, program, "git");
 *        expect_value(pk_mock_run, argc, 3);
 *        expect_string(pk_mock_run, argv, "log -n 5");
 *        expect_string(pk_mock_run, cwd, "/src");
 *        expect_any(pk_mock_run, cmd);
 *        will_return(pk_mock_run, pk_reply_ok("abc fix\n"));
 *   3. Run the code under test. Each command the runner starts consumes
 *      one expectation per parameter and one reply, in queue order; the
 *      reply is played through the same core pump as a scripted reply
 *      (fakes.h), so verbs, line callbacks, limits and timeouts behave as
 *      with a real child.
 *   4. pk_runner_free(runner) when the runs have finished; it frees every
 *      reply it took.
 *
 * Failures are cmocka's own: a command with nothing queued ("Could not get
 * value to check parameter program of function pk_mock_run"), a queued
 * expectation without a reply ("Could not get value to mock function
 * pk_mock_run"), a check that does not match ("\"svn\" != \"git\""), or an
 * expectation or reply still queued when the test ends ("... still has
 * values that haven't been checked", "... has remaining non-returned
 * values") fail the running test. A failed check leaves the test by
 * cmocka's longjmp from inside the runner's start, like any cmocka mock:
 * the run that was starting is abandoned (its memory is not freed; the
 * test has failed anyway) and the runner itself stays consistent.
 *
 * Parameters checked by pk_mock_run, once per command, in this order (each
 * needs an expectation: use expect_any for the ones a test ignores):
 *   program  const char *: the program as given to pk_cmd_new.
 *   argc     size_t: the number of arguments (the program not counted).
 *   argv     const char *: the arguments joined with single spaces, "" when
 *            there are none. No quoting: {"a b"} and {"a", "b"} both give
 *            "a b"; check argc (or cmd) when that matters.
 *   cwd      const char *: the command's working directory, "" when the
 *            command inherits the caller's.
 *   cmd      const pk_cmd *: the whole command, for expect_check with your
 *            own checker (env, stdin, timeout... through pk.h's views):
 *              static int has_token(LargestIntegralType v,
 *                                   LargestIntegralType data) {
 *                const pk_cmd *c = (const pk_cmd *)(uintptr_t)v;
 *                return pk_cmd_env_state(c, "TOKEN", NULL) == PK_ENV_SET;
 *              }
 *              pk_mock_expect_cmd("gh", "pr list", has_token, 0);
 *            The command is borrowed for the duration of the check.
 * The reply is taken with mock() as a pk_reply * queued by will_return
 * (or pk_mock_will_reply). will_return_count / will_return_always with one
 * reply work too: the runner owns each distinct reply once.
 *
 * cmocka's expect_string keeps the pointer, not a copy: pass string
 * literals or strings that outlive the command's run.
 *
 * Threads: cmocka's queues are process-wide and not thread-safe, and a
 * failed check longjmps on the calling thread. Use a mock runner from the
 * thread that created it (the test's thread); a start from any other
 * thread fails with PK_EINVAL and touches no cmocka queue. For commands
 * run from several threads, use the scripted runner (fakes.h).
 */
#ifndef PK_MOCK_H
#define PK_MOCK_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pk/fakes.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A runner answering from cmocka's queues (see above). Its name is
 * "mock"; replies play at time scale 0 (instant, order kept) until
 * pk_mock_set_time_scale says otherwise. Create it on the thread that will
 * use it. Errors: PK_EINVAL (out is NULL), PK_ENOMEM. */
PK_EXTERN int pk_mock_new(pk_runner **out);

/* The runner's clock, as for the scripted runner: 0 (default) plays
 * replies at once, in order; 1 real time; 0.1 ten times faster. The
 * command's own timeout and grace run on the same clock.
 * Errors: PK_EINVAL (r is not a mock runner, scale negative or huge). */
PK_EXTERN int pk_mock_set_time_scale(pk_runner *r, double scale);

/* How many commands the runner took a reply for (0 for NULL or another
 * kind of runner). */
PK_EXTERN size_t pk_mock_calls(const pk_runner *r);

/* Starting a command fails without consuming anything when the runner
 * cannot prepare the checks (PK_ENOMEM) or is used from another thread
 * than its creator's (PK_EINVAL). A reply queued as NULL (a pk_reply_*
 * constructor out of memory) fails that run with PK_ENOMEM after the
 * checks. */

/* ------------------------------------------------------ helper macros */
/* Each helper queues one expectation for every parameter, so the queues
 * stay aligned call by call; mixing them with cmocka's own macros is fine
 * as long as every call gets exactly one expectation per parameter.
 * String arguments must outlive the run (literals are fine). */

/* Expect program with these space-joined arguments, in any cwd. */
#define pk_mock_expect_call(program_, args_)                                   \
  pk_mock_expect_call_in_(expect_any(pk_mock_run, cwd), program_, args_,       \
                          expect_any(pk_mock_run, cmd))

/* Same, in working directory cwd_ ("" for the inherited one). */
#define pk_mock_expect_call_in(cwd_, program_, args_)                          \
  pk_mock_expect_call_in_(expect_string(pk_mock_run, cwd, cwd_), program_,     \
                          args_, expect_any(pk_mock_run, cmd))

/* Same as pk_mock_expect_call, and check_fn(cmd, data_) must return
 * non-zero (cmocka's expect_check; data_ is a LargestIntegralType). */
#define pk_mock_expect_cmd(program_, args_, check_fn_, data_)                  \
  pk_mock_expect_call_in_(expect_any(pk_mock_run, cwd), program_, args_,       \
                          expect_check(pk_mock_run, cmd, check_fn_, data_))

/* Accept any one command. */
#define pk_mock_expect_any_call()                                              \
  do {                                                                         \
    expect_any(pk_mock_run, program);                                          \
    expect_any(pk_mock_run, argc);                                             \
    expect_any(pk_mock_run, argv);                                             \
    expect_any(pk_mock_run, cwd);                                              \
    expect_any(pk_mock_run, cmd);                                              \
  } while (0)

/* Queue the reply of the next command (taken by the runner when used). */
#define pk_mock_will_reply(reply_) will_return(pk_mock_run, (reply_))

/* Implementation detail of the helpers above. */
#define pk_mock_expect_call_in_(cwd_expect_, program_, args_, cmd_expect_)     \
  do {                                                                         \
    expect_string(pk_mock_run, program, program_);                             \
    expect_any(pk_mock_run, argc);                                             \
    expect_string(pk_mock_run, argv, args_);                                   \
    cwd_expect_;                                                               \
    cmd_expect_;                                                               \
  } while (0)

#ifdef __cplusplus
}
#endif
#endif /* PK_MOCK_H */
