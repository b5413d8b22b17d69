#!/usr/bin/env python3
"""A private single-node Slurm cluster for tests, started and stopped by the test.

The cluster (munged, slurmctld, slurmd) runs from one folder with its own munge
key and socket, its own slurm.conf (found by clients through SLURM_CONF) and
TCP ports picked free on 127.0.0.1, so it neither needs nor touches /etc/slurm,
/etc/munge, /run or /var, and two clusters on one machine do not clash.  No
systemd is needed: the daemons run in the foreground as children of the test.

    import slurm_cluster
    reason = slurm_cluster.unavailable()          # None, or why not here
    with slurm_cluster.LocalSlurm(workdir) as cluster:
        subprocess.run(["sbatch", "--array=0-3", script], env=cluster.env)
        states = cluster.wait(job_id, timeout=120)

Leaving the `with` block cancels every job of the cluster, stops the daemons
(TERM, then KILL) and kills whatever job process is left.

Self-test: python3 slurm_cluster.py --selftest [--workdir DIR]
"""

import argparse
import ctypes
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

# Folders searched for the Slurm and munge programs besides PATH: the daemons
# live in sbin, which a non-login PATH may lack.
_EXTRA_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
_DAEMONS = ["munged", "slurmctld", "slurmd"]
_CLIENTS = ["sbatch", "squeue", "sinfo", "scancel", "scontrol"]

# squeue states of a job that has not finished yet; every other state
# (COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, ...) is final.
ACTIVE_STATES = frozenset([
    "PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED",
    "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED",
    "RESV_DEL_HOLD",
])

# Seconds between SIGTERM and SIGKILL when a job is cancelled (Slurm's default
# is 30): short, so that stopping the cluster does not wait on a job that traps TERM.
_KILL_WAIT = 2
# Seconds a daemon gets to exit after SIGTERM before it is killed.
_STOP_GRACE = 5.0
# A unix socket path must fit in sockaddr_un.sun_path (108 bytes with the NUL).
# slurmstepd makes one per step in SlurmdSpoolDir named NODE_JOBID.STEPID.
_SUN_PATH_MAX = 107


class SlurmError(RuntimeError):
    """The cluster could not be started, queried or stopped."""


def _which(name):
    return shutil.which(name, path=os.pathsep.join(os.environ.get("PATH", "").split(os.pathsep) + _EXTRA_PATH))


def unavailable():
    """None when a LocalSlurm can be started here, else a sentence saying why not."""
    if not sys.platform.startswith("linux"):
        return "a local Slurm cluster needs Linux"
    if os.geteuid() != 0:
        # slurmd must run as root to start jobs (and SlurmUser=root keeps the
        # configuration free of a dedicated slurm account).
        return "a local Slurm cluster needs root (slurmd and slurmctld run as root)"
    missing = [name for name in _DAEMONS + _CLIENTS if _which(name) is None]
    if missing:
        return ("missing %s: install the Debian packages slurm-wlm and munge"
                % ", ".join(missing))
    return None


def _path_ok_for_munged(path):
    """Whether munged accepts its key, socket and seed under `path`.

    munged refuses a folder unless every folder up to / can be entered by
    everyone (clients must reach the socket) and none is writable by group or
    others without the sticky bit (so nobody else can swap its files); /tmp
    (1777) passes, a 0700 mkdtemp folder does not.
    """
    path = os.path.abspath(path)
    while True:
        try:
            st = os.stat(path)
        except OSError:
            return False
        if not st.st_mode & stat.S_IXOTH:
            return False
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
            return False
        if st.st_uid not in (0, os.geteuid()):
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def _free_ports(count):
    """`count` distinct TCP ports free on 127.0.0.1 now (all held open until each is picked)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _listening(port):
    """Whether a socket listens on 127.0.0.1:port; True when /proc cannot tell."""
    try:
        with open("/proc/net/tcp") as f:
            rows = [line.split() for line in f.readlines()[1:]]
    except OSError:
        return True
    # local_address is hex "0100007F:PORT" for 127.0.0.1; state 0A is LISTEN.
    return any(len(r) > 3 and r[1] == "0100007F:%04X" % port and r[3] == "0A" for r in rows)


def _parent_death_signal():
    """A preexec_fn making a daemon get SIGTERM when the test process dies (Linux).

    Without it a test killed by a timeout (SIGKILL skips the `with` exit) would
    leave the daemons running forever.  The signal follows the thread that
    started the daemon, so start the cluster from a thread that outlives it.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    PR_SET_PDEATHSIG = 1

    def preexec():
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    return preexec


def _tail(path, lines):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return "(cannot read: %s)\n" % e.strerror


def _proc_environ(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def _alive(pid):
    """Whether `pid` runs; a zombie does not (slurmstepd's zombies are reparented
    to init, which may take a while to reap them)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _proc_comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


class LocalSlurm:
    """A single-node Slurm cluster living in `workdir` (a folder the caller owns).

    Attributes once started:
      env            os.environ copy for sbatch/squeue/scancel/sinfo: SLURM_CONF
                     points at this cluster, PATH has the Slurm programs, and
                     inherited SLURM_*/SBATCH_*/... variables (a test run inside a
                     real Slurm job) are dropped so they do not steer the clients.
      dir            the folder holding slurm.conf, munge key and socket, state,
                     spool, pid files and logs: workdir/slurm, or a folder under
                     /tmp when munged would refuse workdir or its path is too long
                     for unix sockets (removed again after a clean stop).
      conf           path of slurm.conf.
      node, partition, cpus, ports (slurmctld, slurmd).
      start_seconds  seconds from launching munged to the node being idle.
      final_states   after stop: {job id: state} of every job slurmctld knew.
    """

    def __init__(self, workdir, cpus=None, start_timeout=30.0):
        self.workdir = os.path.abspath(workdir)
        self.cpus = cpus or os.cpu_count() or 1
        self.start_timeout = start_timeout
        self.node = socket.gethostname().split(".")[0]
        self.partition = "test"
        self.dir = None
        self.conf = None
        self.env = None
        self.ports = None
        self.start_seconds = None
        self.final_states = {}
        self._procs = {}          # daemon name -> Popen, in start order
        self._own_dir = False     # self.dir is a /tmp folder this object made
        self._keep_dir = False    # keep it all the same (the start failed)
        self._conf_marker = None  # b"SLURM_CONF=..." found in the environ of this cluster's processes

    # --- starting -------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        problems = self.stop()
        # A failed stop must not hide the test's own exception; otherwise it is
        # an error of its own (a process of the cluster may be left running).
        if problems and exc_type is None:
            raise SlurmError("stopping the local Slurm cluster: " + "; ".join(problems))
        return False

    def start(self):
        reason = unavailable()
        if reason:
            raise SlurmError(reason)
        try:
            self._prepare()
            began = time.monotonic()
            self._start_munged()
            self._popen("slurmctld", [_which("slurmctld"), "-D", "-f", self.conf])
            self._popen("slurmd", [_which("slurmd"), "-D", "-f", self.conf, "-N", self.node])
            self._wait_idle()
            self.start_seconds = time.monotonic() - began
        except BaseException:
            # __exit__ is not called when __enter__ fails: stop what started,
            # keeping the folder (the error names its logs).
            self._keep_dir = True
            self.stop(quiet=True)
            raise
        return self

    def _choose_dir(self):
        os.makedirs(self.workdir, exist_ok=True)
        preferred = os.path.join(self.workdir, "slurm")
        # Longest unix socket: slurmstepd's SPOOL/NODE_JOBID.STEPID (32-bit ids).
        longest = len(os.path.join(preferred, "spool", "%s_4294967294.4294967294" % self.node))
        usable = (longest <= _SUN_PATH_MAX and _path_ok_for_munged(self.workdir)
                  # slurm.conf has no quoting for blanks or comments in values.
                  and not re.search(r"[\s#=,]", preferred))
        if usable:
            shutil.rmtree(preferred, ignore_errors=True)  # a fresh cluster, no old state
            os.mkdir(preferred)
            os.chmod(preferred, 0o755)
            return preferred
        base = "/tmp"
        if not _path_ok_for_munged(base):
            raise SlurmError("neither %s nor /tmp is a folder munged accepts (every parent must "
                             "be world-executable and not group/world-writable without the sticky bit)"
                             % self.workdir)
        path = tempfile.mkdtemp(prefix="slurm-", dir=base)
        os.chmod(path, 0o755)  # mkdtemp makes 0700, which munged refuses for its socket
        self._own_dir = True
        return path

    def _prepare(self):
        self.dir = self._choose_dir()
        d = self.dir
        for sub in ("state", "spool"):
            os.mkdir(os.path.join(d, sub), 0o755)
        self.conf = os.path.join(d, "slurm.conf")
        self._conf_marker = ("SLURM_CONF=" + self.conf).encode()
        self.ports = dict(zip(("slurmctld", "slurmd"), _free_ports(2)))

        # munge key: 0600 and owned by us, else munged refuses it.
        key = os.path.join(d, "munge.key")
        mungekey = _which("mungekey")
        if mungekey:
            subprocess.run([mungekey, "--create", "--keyfile=" + key], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        else:  # munge older than 0.5.14 has no mungekey; any random bytes do
            with open(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
                f.write(os.urandom(1024))
        os.chmod(key, 0o600)

        # The system's /etc/slurm/plugstack.conf may load SPANK plugins into
        # every job; this cluster has none.
        with open(os.path.join(d, "plugstack.conf"), "w"):
            pass

        cluster_name = "t%d" % self.ports["slurmctld"]  # lower case, unique per live cluster
        lines = [
            "# A private single-node cluster for a test; see tests/bench/slurm_cluster.py.",
            "ClusterName=%s" % cluster_name,
            "SlurmctldHost=%s(127.0.0.1)" % self.node,
            "SlurmctldPort=%d" % self.ports["slurmctld"],
            "SlurmdPort=%d" % self.ports["slurmd"],
            # Listen on loopback only, not on every interface.
            "CommunicationParameters=NoCtldInAddrAny,NoInAddrAny",
            "SlurmUser=root",
            "SlurmdUser=root",
            # Both the RPC authentication and the job credentials go through
            # this cluster's munged (AuthInfo's socket is read by auth/munge and
            # cred/munge alike); the system munged need not run.
            "AuthType=auth/munge",
            "CredType=cred/munge",
            "AuthInfo=socket=%s" % os.path.join(d, "munge.socket"),
            "StateSaveLocation=%s" % os.path.join(d, "state"),
            "SlurmdSpoolDir=%s" % os.path.join(d, "spool"),
            "SlurmctldPidFile=%s" % os.path.join(d, "slurmctld.pid"),
            "SlurmdPidFile=%s" % os.path.join(d, "slurmd.pid"),
            "SlurmctldLogFile=%s" % os.path.join(d, "slurmctld.log"),
            "SlurmdLogFile=%s" % os.path.join(d, "slurmd.log"),
            "PlugStackConfig=%s" % os.path.join(d, "plugstack.conf"),
            # The cgroup plugins (the default) kill every job in a container
            # without a delegated cgroup tree; track processes through /proc.
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            # Consumable CPUs: array tasks share the node instead of each
            # taking it whole (select/linear runs them one at a time).
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "SchedulerParameters=batch_sched_delay=0",
            # No accounting database, so finished jobs are only visible in
            # squeue -t all while their record lives: keep it 10 minutes.
            "MinJobAge=600",
            "KillWait=%d" % _KILL_WAIT,
            "MpiDefault=none",
            "MailProg=/bin/true",
            # A node that restarts registers as idle again instead of down.
            "ReturnToService=2",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "NodeName=%s NodeAddr=127.0.0.1 CPUs=%d State=UNKNOWN" % (self.node, self.cpus),
            "PartitionName=%s Nodes=%s Default=YES MaxTime=INFINITE State=UP"
            % (self.partition, self.node),
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

        env = {k: v for k, v in os.environ.items()
               if not re.match(r"(SLURM|SBATCH|SALLOC|SRUN|SQUEUE|SINFO|SCANCEL|SCONTROL)_", k)}
        env["SLURM_CONF"] = self.conf
        dirs = []
        for name in _DAEMONS + _CLIENTS:
            folder = os.path.dirname(_which(name))
            if folder not in dirs:
                dirs.append(folder)
        env["PATH"] = os.pathsep.join(dirs + [p for p in env.get("PATH", "").split(os.pathsep)
                                              if p and p not in dirs])
        self.env = env

    def _popen(self, name, argv):
        out = open(os.path.join(self.dir, name + ".out"), "wb")
        try:
            # Own session: a Ctrl-C at the terminal reaches only the test, whose
            # `with` exit then stops the cluster in order (jobs first).
            proc = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_parent_death_signal())
        finally:
            out.close()
        self._procs[name] = proc
        return proc

    def _start_munged(self):
        d = self.dir
        sock = os.path.join(d, "munge.socket")
        # Foreground munged logs to stderr (munged.out); --log-file is unused then.
        proc = self._popen("munged", [
            _which("munged"), "-F", "--key-file=" + os.path.join(d, "munge.key"),
            "--socket=" + sock, "--pid-file=" + os.path.join(d, "munged.pid"),
            "--seed-file=" + os.path.join(d, "munged.seed"),
            "--log-file=" + os.path.join(d, "munged.log")])
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise SlurmError("munged exited with %s at start\n%s" % (proc.returncode, self.logs()))
            if os.path.exists(sock):
                try:
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                        s.connect(sock)
                    return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise SlurmError("munged did not open %s in 10 s\n%s" % (sock, self.logs()))
            time.sleep(0.05)

    def _check_daemons(self):
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise SlurmError("%s exited with %s\n%s" % (name, proc.returncode, self.logs()))

    def _wait_idle(self):
        deadline = time.monotonic() + self.start_timeout
        # sinfo sent before slurmctld listens backs off for a second before
        # retrying; waiting for the port first makes the start that much shorter.
        # (Read from /proc: a test connection would log an error in slurmctld.log.)
        while time.monotonic() < deadline and not _listening(self.ports["slurmctld"]):
            self._check_daemons()
            time.sleep(0.05)
        last = ""
        while True:
            self._check_daemons()
            result = self._run(["sinfo", "-h", "-o", "%t"], check=False)
            last = (result.stdout + result.stderr).strip()
            if result.returncode == 0 and last == "idle":
                return
            if time.monotonic() > deadline:
                node = self._run(["scontrol", "show", "node", self.node], check=False)
                raise SlurmError("the node did not become idle in %g s (sinfo: %r)\n%s\n%s"
                                 % (self.start_timeout, last, node.stdout + node.stderr, self.logs()))
            time.sleep(0.1)

    # --- using ----------------------------------------------------------------

    def _run(self, argv, check=True, timeout=30):
        result = subprocess.run(argv, env=self.env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=timeout)
        if check and result.returncode != 0:
            raise SlurmError("%s failed (%d): %s" % (" ".join(argv), result.returncode,
                                                      result.stderr.strip()))
        return result

    def submit(self, *sbatch_args, cwd=None):
        """sbatch with these arguments; returns the job id (a string)."""
        out = subprocess.run(["sbatch", "--parsable"] + list(sbatch_args), env=self.env, cwd=cwd,
                             text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, timeout=60)
        if out.returncode != 0:
            raise SlurmError("sbatch %s failed (%d): %s"
                             % (" ".join(sbatch_args), out.returncode, out.stderr.strip()))
        return out.stdout.strip().split(";")[0]  # "ID" or "ID;CLUSTER"

    def states(self, job_id):
        """The squeue state of each task of the job (one entry for a still pending array range)."""
        result = self._run(["squeue", "-h", "-j", str(job_id), "-t", "all", "-o", "%T"], check=False)
        if result.returncode != 0:
            raise SlurmError("squeue -j %s failed (%d): %s"
                             % (job_id, result.returncode, result.stderr.strip()))
        return result.stdout.split()

    def wait(self, job_id, timeout=120.0, poll=0.2):
        """Poll until no task of the job is active; returns the final states.

        Raises SlurmError when the job is unknown (never submitted, or purged
        after MinJobAge) or a daemon died, TimeoutError with squeue's view and
        the logs when the job is still active after `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            states = self.states(job_id)
            if not states:
                raise SlurmError("job %s is not known to slurmctld" % job_id)
            if not ACTIVE_STATES.intersection(states):
                return states
            self._check_daemons()
            if time.monotonic() > deadline:
                view = self._run(["squeue", "-j", str(job_id), "-t", "all", "-o", "%i %T %r"],
                                 check=False)
                raise TimeoutError("job %s still active after %g s:\n%s\n%s"
                                   % (job_id, timeout, view.stdout + view.stderr, self.logs()))
            time.sleep(poll)

    def logs(self, lines=30):
        """The tails of the daemons' logs, for error messages."""
        if not self.dir:
            return ""
        parts = []
        for name in ("munged.out", "slurmctld.log", "slurmctld.out", "slurmd.log", "slurmd.out"):
            path = os.path.join(self.dir, name)
            if os.path.exists(path):
                parts.append("--- %s (last %d lines)\n%s" % (path, lines, _tail(path, lines)))
        return "".join(parts)

    def pids(self):
        """PIDs of every live process of this cluster: daemons, slurmstepd, job processes.

        slurmstepd and the jobs are no children of ours (slurmd double-forks
        them) and their command lines do not name the cluster's folder; they
        are found by the SLURM_CONF=<this conf> they inherit (slurmstepd from
        slurmd, jobs from sbatch's exported environment).
        """
        found = set(p.pid for p in self._procs.values() if p.poll() is None)
        if self._conf_marker:
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) == os.getpid():
                    continue
                pid = int(entry)
                if not _alive(pid):
                    continue
                environ = _proc_environ(pid)
                if self._conf_marker in environ and (
                        _proc_comm(pid) in _DAEMONS + ["slurmstepd"]
                        or any(e.startswith(b"SLURM_JOB_ID=") for e in environ)):
                    found.add(pid)
        return sorted(found)

    # --- stopping -------------------------------------------------------------

    def _cancel_all(self, problems):
        """scancel every job and wait until none is active (slurmstepd ignores TERM,
        so jobs must end through slurmctld before the daemons go)."""
        listing = self._run(["squeue", "-h", "-t", "all", "-o", "%i %T"], check=False)
        if listing.returncode != 0:
            problems.append("squeue failed at stop: " + listing.stderr.strip())
            return
        active = [line.split()[0] for line in listing.stdout.splitlines()
                  if len(line.split()) == 2 and line.split()[1] in ACTIVE_STATES]
        if active:
            # Array ranges ("12_[3-7]") are cancelled through their job id.
            ids = sorted(set(re.sub(r"_\[.*\]$", "", i) for i in active))
            result = self._run(["scancel"] + ids, check=False)
            if result.returncode != 0 and "already completing or completed" not in result.stderr:
                problems.append("scancel failed: " + result.stderr.strip())
        deadline = time.monotonic() + _KILL_WAIT + 20
        while True:
            listing = self._run(["squeue", "-h", "-t", "all", "-o", "%i %T"], check=False)
            states = dict(line.split() for line in listing.stdout.splitlines() if len(line.split()) == 2)
            if listing.returncode == 0 and not ACTIVE_STATES.intersection(states.values()):
                self.final_states = states
                return
            if time.monotonic() > deadline:
                self.final_states = states
                problems.append("jobs still active %d s after scancel: %s"
                                % (_KILL_WAIT + 20, ", ".join("%s %s" % kv for kv in states.items()
                                                              if kv[1] in ACTIVE_STATES)))
                return
            time.sleep(0.2)

    def stop(self, quiet=False):
        """Cancel all jobs, stop slurmd, slurmctld and munged, kill what is left.

        Returns the list of problems met (empty when all went well); when there
        were any, the daemons' log tails are printed to stderr.  Safe to call twice.
        """
        problems = []
        died = [name for name, p in self._procs.items() if p.poll() is not None]
        for name in died:
            problems.append("%s had exited with %s before stop" % (name, self._procs[name].returncode))
        ctld = self._procs.get("slurmctld")
        if ctld is not None and ctld.poll() is None and self._procs.get("slurmd") is not None:
            try:
                self._cancel_all(problems)
            except (OSError, subprocess.SubprocessError) as e:
                problems.append("cancelling the jobs: %s" % e)
        # slurmd first (no new steps), slurmctld (saves its state), munged last
        # (both daemons need it until they are gone).
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self._procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=_STOP_GRACE)
            except subprocess.TimeoutExpired:
                problems.append("%s ignored SIGTERM for %g s and was killed" % (name, _STOP_GRACE))
                proc.kill()
                proc.wait()
        # Anything of the cluster still alive (a slurmstepd whose job could not
        # be cancelled, a job process it left) is killed outright.
        leftover = self.pids()
        if leftover:
            problems.append("processes left after stop, killed: %s"
                            % ", ".join("%d (%s)" % (p, _proc_comm(p)) for p in leftover))
            for pid in leftover:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            deadline = time.monotonic() + 5
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.pids():
                problems.append("processes survive SIGKILL: %s" % self.pids())
        if problems and not quiet:
            print("local Slurm cluster in %s: %s\n%s" % (self.dir, "; ".join(problems), self.logs()),
                  file=sys.stderr)
        if self._own_dir and not problems and not self._keep_dir and os.path.isdir(self.dir):
            # A /tmp folder of ours: removed after a clean run, kept for
            # post-mortem otherwise (its path is in the message above).
            shutil.rmtree(self.dir, ignore_errors=True)
        self._procs = {}
        return problems


# --- self-test ------------------------------------------------------------------

def _selftest(workdir):
    reason = unavailable()
    if reason:
        print("SKIP: " + reason)
        return 77
    failures = []

    def check(condition, what):
        if not condition:
            failures.append(what)
            print("FAIL: " + what, file=sys.stderr)

    results = os.path.join(workdir, "results")
    os.makedirs(results)
    script = os.path.join(workdir, "task.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\n: > \"$1/$SLURM_ARRAY_TASK_ID\"\n")
    sleeper = os.path.join(workdir, "sleep.sh")
    with open(sleeper, "w") as f:
        f.write("#!/bin/sh\nsleep 300\n")

    t0 = time.monotonic()
    cluster = LocalSlurm(workdir)
    with cluster:
        started = time.monotonic() - t0
        t1 = time.monotonic()
        out = subprocess.run(["sbatch", "--parsable", "--array=0-3",
                              "--output=" + os.path.join(workdir, "task-%A_%a.out"), script, results],
                             env=cluster.env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        check(out.returncode == 0, "sbatch of the array: " + out.stderr)
        array_id = out.stdout.strip().split(";")[0]
        states = cluster.wait(array_id, timeout=120)
        array_seconds = time.monotonic() - t1
        check(states == ["COMPLETED"] * 4, "array task states: %s" % states)
        check(sorted(os.listdir(results)) == ["0", "1", "2", "3"],
              "array task files: %s" % sorted(os.listdir(results)))

        sleep_id = cluster.submit("--output=" + os.path.join(workdir, "sleep-%j.out"), sleeper)
        deadline = time.monotonic() + 30
        while cluster.states(sleep_id) != ["RUNNING"] and time.monotonic() < deadline:
            time.sleep(0.1)
        check(cluster.states(sleep_id) == ["RUNNING"], "the sleeping job runs: %s"
              % cluster.states(sleep_id))
        # The batch script needs a moment to start `sleep` once the job runs.
        while True:
            running = cluster.pids()
            comms = [_proc_comm(p) for p in running]
            if "sleep" in comms or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        check("slurmstepd" in comms and "sleep" in comms,
              "slurmstepd and the job are found as processes of the cluster: %s" % comms)
        daemon_pids = {name: p.pid for name, p in cluster._procs.items()}
        t2 = time.monotonic()
    stop_seconds = time.monotonic() - t2

    check(cluster.final_states.get(sleep_id) == "CANCELLED",
          "the sleeping job was cancelled: %s" % cluster.final_states)
    for pid in running + list(daemon_pids.values()):
        check(not _alive(pid), "process %d (%s) is gone" % (pid, _proc_comm(pid)))
    check(not cluster.pids(), "no process of the cluster is left: %s" % cluster.pids())
    survivors = subprocess.run(["pgrep", "-a", "-f", cluster.dir], text=True, stdout=subprocess.PIPE)
    check(survivors.stdout.strip() == "", "pgrep -f %s finds nothing: %s" % (cluster.dir, survivors.stdout))
    check(stop_seconds < 30, "stopping took %.1f s" % stop_seconds)

    print("start to idle node: %.2f s (daemons %.2f s)" % (started, cluster.start_seconds))
    print("4-task array end to end: %.2f s" % array_seconds)
    print("stop with a running job: %.2f s" % stop_seconds)
    print("cluster folder: %s" % cluster.dir)
    if failures:
        print("%d failure(s)" % len(failures), file=sys.stderr)
        return 1
    print("ok")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--selftest", action="store_true", help="start a cluster, run jobs, stop it")
    parser.add_argument("--workdir", help="folder for the self-test (default: a new temporary one)")
    args = parser.parse_args()
    if not args.selftest:
        parser.print_help()
        return 2
    workdir = args.workdir or tempfile.mkdtemp(prefix="slurm-selftest-")
    code = _selftest(os.path.abspath(workdir))
    if code == 0 and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
