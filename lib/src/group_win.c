/* Windows: groups on a job object.
 *
 * The group is one job with kill-on-close (and its limits); each run of
 * the group gets its own job nested inside it, so a run's release ends
 * that run's tree while the group's kill, limits and accounting cover
 * every run and every adopted process. Windows has no signals: the kill
 * is TerminateJobObject (every member exits 1) and there is no soft step
 * for a graceful stop. Suspension suspends every thread of every member
 * once; pk keeps it level-triggered like the other mechanisms (a second
 * suspend is a no-op, one resume undoes it) by resuming exactly the
 * threads it suspended. A run started while the group is suspended is
 * created suspended and stays so until the resume. */
#include "internal.h"
#include "win.h"

#include <stdio.h>
#include <string.h>
#include <tlhelp32.h>

#define KILL_WAIT_MS 30000

typedef struct parked {
  DWORD tid;
  HANDLE thread;
} parked;

struct pk_group {
  pk_runner *runner;
  pk_group_opts opts;
  HANDLE job;
  SRWLOCK lock;
  volatile LONG refs; /* the group itself + every run not yet freed */
  bool suspended;
  parked *threads; /* what pk suspended, to resume exactly those */
  size_t nthreads, cap;
};

/* ------------------------------------------------------------- the job */

static DWORD active_count(HANDLE job) {
  JOBOBJECT_BASIC_ACCOUNTING_INFORMATION a;
  if (!QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &a,
                                 sizeof(a), NULL))
    return 0;
  return a.ActiveProcesses;
}

/* The job's process ids (*ids heap, *n of them): 0, PK_ENOMEM, or
 * PK_EIO when Windows will not say. */
static int job_pids(HANDLE job, ULONG_PTR **ids, size_t *n) {
  *ids = NULL;
  *n = 0;
  for (DWORD cap = 64;; cap *= 4) {
    size_t size =
        sizeof(JOBOBJECT_BASIC_PROCESS_ID_LIST) + cap * sizeof(ULONG_PTR);
    JOBOBJECT_BASIC_PROCESS_ID_LIST *l = pk__malloc(size);
    if (l == NULL)
      return PK_ENOMEM;
    BOOL ok = QueryInformationJobObject(job, JobObjectBasicProcessIdList, l,
                                        (DWORD)size, NULL);
    if (!ok && GetLastError() != ERROR_MORE_DATA) {
      pk__free(l);
      return PK_EIO;
    }
    if (ok && l->NumberOfProcessIdsInList >= l->NumberOfAssignedProcesses) {
      size_t m = l->NumberOfProcessIdsInList;
      *ids = pk__calloc(m + 1, sizeof(ULONG_PTR));
      if (*ids != NULL)
        memcpy(*ids, l->ProcessIdList, m * sizeof(ULONG_PTR));
      *n = *ids != NULL ? m : 0;
      pk__free(l);
      return *ids != NULL ? 0 : PK_ENOMEM;
    }
    pk__free(l);
  }
}

static bool wait_empty(HANDLE job, int64_t ms) {
  ULONGLONG end = GetTickCount64() + (ULONGLONG)ms;
  while (active_count(job) > 0) {
    if (GetTickCount64() >= end)
      return false;
    Sleep(1);
  }
  return true;
}

static int kill_tree(pk_group *g, bool wait) {
  if (active_count(g->job) > 0 && !TerminateJobObject(g->job, 1))
    return GetLastError() == ERROR_ACCESS_DENIED ? PK_EPERM : PK_EIO;
  return !wait || wait_empty(g->job, KILL_WAIT_MS) ? 0 : PK_ETIMEOUT;
}

/* --------------------------------------------------------------- limits */

/* A cap that is not enforced is no protection: under wine (which accepts
 * job limits and enforces none) and wherever Windows refuses one, the
 * group is not created. */
static int set_limits(HANDLE job, const pk_group_opts *o, char **msg) {
  char buf[256];
  if (!pk__group_has_limits(o))
    return 0;
  const char *which = o->memory_max      ? "memory_max"
                      : o->max_processes ? "max_processes"
                                         : "cpu_quota";
  if (pk__win_is_wine()) {
    *msg = pk__sprintf("%s: wine accepts job object limits but enforces none "
                       "(an unapplied cap is no protection)",
                       which);
    return PK_ELIMIT;
  }
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
  memset(&li, 0, sizeof(li));
  if (!QueryInformationJobObject(job, JobObjectExtendedLimitInformation, &li,
                                 sizeof(li), NULL))
    goto refused;
  if (o->memory_max > 0) {
    li.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_JOB_MEMORY;
    li.JobMemoryLimit = (SIZE_T)o->memory_max;
  }
  if (o->max_processes > 0) {
    li.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_ACTIVE_PROCESS;
    li.BasicLimitInformation.ActiveProcessLimit =
        o->max_processes > MAXDWORD ? MAXDWORD : (DWORD)o->max_processes;
  }
  if (!SetInformationJobObject(job, JobObjectExtendedLimitInformation, &li,
                               sizeof(li)))
    goto refused;
  if (o->cpu_quota > 0) {
    which = "cpu_quota";
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    /* A hard cap in 1/100 of a percent of all the machine's CPUs. */
    double rate = o->cpu_quota / (double)si.dwNumberOfProcessors * 10000.0;
    JOBOBJECT_CPU_RATE_CONTROL_INFORMATION cr;
    memset(&cr, 0, sizeof(cr));
    cr.ControlFlags = JOB_OBJECT_CPU_RATE_CONTROL_ENABLE |
                      JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP;
    cr.CpuRate = rate >= 10000 ? 10000 : rate < 1 ? 1 : (DWORD)(rate + 0.5);
    if (!SetInformationJobObject(job, JobObjectCpuRateControlInformation, &cr,
                                 sizeof(cr)))
      goto refused;
  }
  return 0;
refused:
  *msg = pk__sprintf("%s: Windows refused the job object limit: %s", which,
                     pk__win_msg(GetLastError(), buf, sizeof(buf)));
  return PK_ELIMIT;
}

/* ------------------------------------------------------------ lifecycle */

void pk__wgroup_ref(pk_group *g) { InterlockedIncrement(&g->refs); }

void pk__wgroup_unref(pk_group *g) {
  if (InterlockedDecrement(&g->refs) != 0)
    return;
  for (size_t i = 0; i < g->nthreads; i++)
    CloseHandle(g->threads[i].thread);
  pk__free(g->threads);
  if (g->job != NULL)
    CloseHandle(g->job); /* kill-on-close: nothing outlives the group */
  if (g->runner != NULL)
    pk__win_runner_group_free(g->runner);
  pk__free(g);
}

int pk_group_new(const pk_group_opts *opts, pk_group **out, char **errmsg) {
  pk_group_opts o;
  char *msg = NULL;
  int rc = pk__group_new_begin(opts, out, errmsg, &o, &msg);
  if (out == NULL)
    return rc;
  if (rc == 0 && o.mechanism != PK_MECH_AUTO &&
      o.mechanism != PK_MECH_JOB_OBJECT) {
    msg = pk__sprintf("mechanism %s is not available on this host (Windows "
                      "has job_object only)",
                      pk_mechanism_name(o.mechanism));
    rc = PK_EUNSUPPORTED;
  }
  pk_group *g = rc == 0 ? pk__calloc(1, sizeof(*g)) : NULL;
  if (rc == 0 && g == NULL)
    rc = PK_ENOMEM;
  if (rc != 0) {
    pk__group_set_msg(errmsg, msg, rc);
    return rc;
  }
  g->opts = o;
  g->opts.mechanism = PK_MECH_JOB_OBJECT;
  g->refs = 1;
  InitializeSRWLock(&g->lock);
  DWORD err = 0;
  if ((g->job = pk__win_job_new(&err)) == NULL) {
    char buf[256];
    msg = pk__sprintf("cannot create a job object: %s",
                      pk__win_msg(err, buf, sizeof(buf)));
    rc = err == ERROR_NOT_ENOUGH_MEMORY || err == ERROR_OUTOFMEMORY ||
                 err == ERROR_NO_SYSTEM_RESOURCES
             ? PK_ELIMIT
             : PK_EIO;
  }
  if (rc == 0)
    rc = set_limits(g->job, &o, &msg);
  if (rc == 0)
    rc = pk__win_runner_group(g, &g->runner);
  if (rc != 0) {
    pk__group_set_msg(errmsg, msg, rc);
    pk__wgroup_unref(g);
    return rc;
  }
  *out = g;
  return 0;
}

void pk_group_free(pk_group *g) {
  if (g == NULL)
    return;
  kill_tree(g, true);
  pk__wgroup_unref(g);
}

pk_mechanism pk_group_mechanism(const pk_group *g) {
  (void)g;
  return PK_MECH_JOB_OBJECT;
}

/* The job dies with this process, and its kill-on-close takes the whole
 * tree: always so on Windows. */
const char *pk_group_parent_death_scope(const pk_group *g) {
  return g != NULL && g->opts.kill_on_parent_death ? "tree" : NULL;
}

pk_runner *pk_group_runner(pk_group *g) { return g != NULL ? g->runner : NULL; }

/* ----------------------------------------------------- kill and signals */

int pk_group_kill_all(pk_group *g) {
  if (g == NULL)
    return PK_EINVAL;
  return kill_tree(g, true);
}

/* No soft step exists: with escalation the tree is terminated at once
 * (waiting a grace nothing can use would only delay it); without, the
 * grace is waited for the tree to end on its own. */
int pk_group_stop(pk_group *g, int64_t grace_ms, bool escalate,
                  pk_shutdown_report *rep) {
  pk_shutdown_report r;
  memset(&r, 0, sizeof(r));
  if (rep != NULL)
    *rep = r;
  if (g == NULL || grace_ms < 0)
    return PK_EINVAL;
  ULONGLONG t0 = GetTickCount64();
  int rc = 0;
  r.members_before = active_count(g->job);
  if (r.members_before > 0 && grace_ms > 0)
    r.signal_error = PK_EUNSUPPORTED; /* the soft signal: none to send */
  r.drained = r.members_before == 0;
  if (!r.drained && !escalate)
    r.drained = wait_empty(g->job, grace_ms);
  if (!r.drained && escalate) {
    r.escalated = true;
    rc = kill_tree(g, true);
  }
  r.members_after = active_count(g->job);
  r.elapsed_ms = (int64_t)(GetTickCount64() - t0);
  if (rep != NULL)
    *rep = r;
  return rc;
}

int pk_group_shutdown(pk_group *g, pk_shutdown_report *rep) {
  if (g == NULL)
    return pk_group_stop(NULL, 0, false, rep);
  return pk_group_stop(g, g->opts.grace_ms, g->opts.escalate, rep);
}

int pk_group_signal(pk_group *g, int sig) {
  if (g == NULL || sig < 0 || sig >= PK_NSIG)
    return PK_EINVAL;
  if (sig == PK_SIGKILL)
    return kill_tree(g, false);
  return sig == 0 ? 0 : PK_EUNSUPPORTED; /* Windows has no signals */
}

/* ------------------------------------------------------ suspend, resume */

static bool is_parked(const pk_group *g, DWORD tid) {
  for (size_t i = 0; i < g->nthreads; i++)
    if (g->threads[i].tid == tid)
      return true;
  return false;
}

static int park(pk_group *g, DWORD tid, HANDLE thread) {
  if (g->nthreads == g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 64;
    parked *t = pk__realloc(g->threads, cap * sizeof(*t));
    if (t == NULL)
      return PK_ENOMEM;
    g->threads = t;
    g->cap = cap;
  }
  g->threads[g->nthreads++] = (parked){tid, thread};
  return 0;
}

static bool has_pid(const ULONG_PTR *ids, size_t n, DWORD pid) {
  for (size_t i = 0; i < n; i++)
    if (ids[i] == pid)
      return true;
  return false;
}

/* Keep the members among ids open for the pass (their pids cannot be
 * reused meanwhile) and drop (zero) every id that is not still in the
 * job once held: a pid listed again after its process was opened is that
 * process's. (IsProcessInJob would say the same, but wine answers it for
 * the innermost job only.) Never this process. hs[i] pairs with ids[i]. */
static HANDLE *hold_members(pk_group *g, ULONG_PTR *ids, size_t n) {
  HANDLE *hs = pk__calloc(n + 1, sizeof(HANDLE));
  for (size_t i = 0; hs != NULL && i < n; i++)
    if (ids[i] != GetCurrentProcessId())
      hs[i] =
          OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)ids[i]);
  ULONG_PTR *again = NULL;
  size_t m = 0;
  if (hs != NULL && job_pids(g->job, &again, &m) != 0)
    m = 0; /* cannot tell: nothing is trusted */
  for (size_t i = 0; hs != NULL && i < n; i++) {
    if (hs[i] != NULL && !has_pid(again, m, (DWORD)ids[i])) {
      CloseHandle(hs[i]);
      hs[i] = NULL;
    }
    if (hs[i] == NULL)
      ids[i] = 0;
  }
  pk__free(again);
  return hs;
}

/* One pass: suspend every thread of the job's processes not suspended
 * yet. *added: how many. A thread that ended meanwhile is no failure. */
static int suspend_pass(pk_group *g, int *added) {
  *added = 0;
  size_t n;
  ULONG_PTR *ids;
  int rc = job_pids(g->job, &ids, &n);
  if (rc != 0)
    return rc;
  HANDLE *held = hold_members(g, ids, n);
  if (held == NULL) {
    pk__free(ids);
    return PK_ENOMEM;
  }
  HANDLE snap = n > 0 ? CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) : NULL;
  if (snap == INVALID_HANDLE_VALUE)
    rc = PK_EIO;
  THREADENTRY32 te;
  te.dwSize = sizeof(te);
  for (BOOL more = rc == 0 && snap != NULL && Thread32First(snap, &te);
       more && rc == 0; more = Thread32Next(snap, &te)) {
    if (te.th32OwnerProcessID == 0 || !has_pid(ids, n, te.th32OwnerProcessID) ||
        is_parked(g, te.th32ThreadID))
      continue;
    HANDLE t = OpenThread(THREAD_SUSPEND_RESUME, FALSE, te.th32ThreadID);
    if (t == NULL) {
      if (GetLastError() == ERROR_ACCESS_DENIED)
        rc = PK_EPERM;
      continue; /* gone */
    }
    if (SuspendThread(t) == (DWORD)-1) {
      CloseHandle(t);
      continue;
    }
    if ((rc = park(g, te.th32ThreadID, t)) != 0) {
      ResumeThread(t);
      CloseHandle(t);
    }
    (*added)++;
  }
  if (snap != NULL && snap != INVALID_HANDLE_VALUE)
    CloseHandle(snap);
  for (size_t i = 0; i < n; i++)
    if (held[i] != NULL)
      CloseHandle(held[i]);
  pk__free(held);
  pk__free(ids);
  return rc;
}

static void resume_parked(pk_group *g) {
  for (size_t i = 0; i < g->nthreads; i++) {
    ResumeThread(g->threads[i].thread);
    CloseHandle(g->threads[i].thread);
  }
  g->nthreads = 0;
}

/* Suspend until a pass finds nothing new: a suspended process creates no
 * process or thread of its own, so what started during one pass is
 * caught by the next. A tree that keeps growing threads from outside
 * (another process creating remote threads in it) past 100 passes is
 * PK_ETIMEOUT. Called with the lock held. */
static int suspend_all(pk_group *g) {
  int rc = 0, added = 1;
  for (int pass = 0; rc == 0 && added > 0 && pass < 100; pass++)
    rc = suspend_pass(g, &added);
  return rc == 0 && added > 0 ? PK_ETIMEOUT : rc;
}

int pk_group_suspend(pk_group *g) {
  if (g == NULL)
    return PK_EINVAL;
  AcquireSRWLockExclusive(&g->lock);
  int rc = 0;
  if (!g->suspended) {
    rc = suspend_all(g);
    if (rc == 0)
      g->suspended = true;
    else
      resume_parked(g); /* all or nothing */
  }
  ReleaseSRWLockExclusive(&g->lock);
  return rc;
}

int pk_group_resume(pk_group *g) {
  if (g == NULL)
    return PK_EINVAL;
  AcquireSRWLockExclusive(&g->lock);
  resume_parked(g);
  g->suspended = false;
  ReleaseSRWLockExclusive(&g->lock);
  return 0;
}

bool pk_group_suspended(const pk_group *g) { return g != NULL && g->suspended; }

/* A run's child, created suspended: into the group's job, then into the
 * run's own (which nests inside it); resumed, or left suspended for the
 * group's resume. 0 or the Windows error. */
DWORD pk__wgroup_admit(pk_group *g, HANDLE proc, HANDLE thread, DWORD tid,
                       HANDLE run_job) {
  DWORD err = 0;
  AcquireSRWLockExclusive(&g->lock);
  if (!AssignProcessToJobObject(g->job, proc) ||
      !AssignProcessToJobObject(run_job, proc)) {
    err = GetLastError();
  } else if (g->suspended) {
    HANDLE dup = NULL;
    if (!DuplicateHandle(GetCurrentProcess(), thread, GetCurrentProcess(), &dup,
                         0, FALSE, DUPLICATE_SAME_ACCESS) ||
        park(g, tid, dup) != 0) {
      err = dup != NULL ? ERROR_NOT_ENOUGH_MEMORY : GetLastError();
      if (dup != NULL)
        CloseHandle(dup);
    }
  } else {
    ResumeThread(thread);
  }
  ReleaseSRWLockExclusive(&g->lock);
  return err;
}

/* ------------------------------------------------------ members, adopt */

int pk_group_members(pk_group *g, int **pids, size_t *n) {
  if (g == NULL || pids == NULL || n == NULL)
    return PK_EINVAL;
  *pids = NULL;
  *n = 0;
  size_t m;
  ULONG_PTR *ids;
  int rc = job_pids(g->job, &ids, &m);
  if (rc != 0)
    return rc;
  int *out = pk__calloc(m + 1, sizeof(int));
  if (out == NULL) {
    pk__free(ids);
    return PK_ENOMEM;
  }
  for (size_t i = 0; i < m; i++)
    out[i] = (int)ids[i];
  pk__free(ids);
  *pids = out;
  *n = m;
  return 0;
}

/* Into the group's job: what it starts afterwards is contained too. */
int pk_group_adopt(pk_group *g, int pid, int pidfd) {
  if (g == NULL || (pidfd < 0 && pid <= 0))
    return PK_EINVAL;
  if (pidfd >= 0)
    return PK_EUNSUPPORTED; /* Windows has no pidfds: adopt by pid */
  if ((DWORD)pid == GetCurrentProcessId())
    return PK_EINVAL; /* pk would be killed, and suspend itself, with it */
  HANDLE h = OpenProcess(PROCESS_SET_QUOTA | PROCESS_TERMINATE | SYNCHRONIZE |
                             PROCESS_QUERY_LIMITED_INFORMATION,
                         FALSE, (DWORD)pid);
  if (h == NULL)
    return GetLastError() == ERROR_ACCESS_DENIED ? PK_EPERM : PK_ESRCH;
  int rc = 0;
  AcquireSRWLockExclusive(&g->lock);
  if (WaitForSingleObject(h, 0) == WAIT_OBJECT_0) {
    rc = 0; /* exited already: nothing to contain */
  } else if (!AssignProcessToJobObject(g->job, h)) {
    DWORD err = GetLastError();
    rc = err == ERROR_ACCESS_DENIED      ? PK_EPERM
         : err == ERROR_NOT_ENOUGH_QUOTA ? PK_ELIMIT
                                         : PK_EIO;
  } else if (g->suspended) {
    rc = suspend_all(g); /* it joins frozen, as on a frozen cgroup */
  }
  ReleaseSRWLockExclusive(&g->lock);
  CloseHandle(h);
  return rc;
}

/* ----------------------------------------------------------------- stats */

int pk_group_stats_get(pk_group *g, pk_group_stats *out) {
  if (g == NULL || out == NULL)
    return PK_EINVAL;
  out->active = active_count(g->job);
  out->oom_kills = -1; /* Windows reports no such count for a job */
  pk__win_job_usage(g->job, &out->cpu_us, &out->peak_memory);
  return 0;
}
