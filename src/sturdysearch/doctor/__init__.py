"""``sturdysearch doctor``: the seed's checklist of connection mistakes, run against a live
cluster and a client configuration.

:func:`diagnose` runs every check and returns a :class:`Report` of :class:`Finding` values
(``findings``), each with a stable id documented in ``docs/doctor.md``. The judging in each
area module (``reach``, ``tls``, ``identity``, ``auth``, ``discovery``, ``client_config``,
``cluster``, ``capacity``, ``index``, ``deprecations``) is pure, so it is tested on recorded
server answers; ``probe`` holds the raw socket timings and ``context`` the server calls.
"""

from __future__ import annotations

from sturdysearch.doctor.context import Options
from sturdysearch.doctor.findings import Finding, exit_code
from sturdysearch.doctor.runner import Report, diagnose

__all__ = ["Finding", "Options", "Report", "diagnose", "exit_code"]
