"""The process's open-file limit: every request in flight holds a socket, so high concurrency needs descriptors."""

from __future__ import annotations

# Descriptors the collector needs besides its sockets: landing files, the warehouse, telemetry, the event loop.
FD_MARGIN = 64


def raise_open_file_limit(concurrency: int) -> str | None:
    """Raise the soft RLIMIT_NOFILE to the hard limit where allowed; a one-line warning if still too low.

    The common soft limit is 1,024 while the hard limit is often far higher: a run at concurrency 1,024 would
    otherwise fail a quarter of its requests with "Too many open files".
    """
    try:
        import resource
    except ImportError:  # Windows has no rlimits; its socket limit is not a per-process file count
        return None
    needed = concurrency + FD_MARGIN
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit cannot be set as the soft one (Linux caps it at nr_open, macOS at OPEN_MAX).
    for wanted in (hard, max(needed, 65_536), needed):
        if wanted == resource.RLIM_INFINITY or wanted <= soft or (hard != resource.RLIM_INFINITY and wanted > hard):
            continue
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            continue
        soft = wanted
        break
    if needed <= soft:
        return None
    shown_hard = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    return (
        f"warning: concurrency {concurrency} needs about {needed} open files but this process may open {soft} "
        f"(hard limit {shown_hard}); requests beyond that will fail as client_error rows. "
        f"Raise the limit (ulimit -n {needed}) or lower the concurrency."
    )
