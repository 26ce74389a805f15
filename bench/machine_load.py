"""How busy the machine was during a benchmark: other jobs on a shared box skew timings, so the
benchmarks report their own CPU seconds beside the whole machine's."""
import os
import resource


def busy_cpu_seconds() -> float:
    """CPU seconds used by the whole machine so far (Linux /proc/stat; 0 elsewhere)."""
    try:
        fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait


def own_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
