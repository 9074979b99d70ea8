"""Readiness and liveness probes for :class:`~otp_py.ChildSpec` (``readiness=``,
``liveness=``): run a command (:class:`Exec`), connect (:class:`Tcp`), ``GET`` a URL
(:class:`Http`) or call a function (:class:`Call`), with Kubernetes' timing fields
(``interval``, ``timeout``, ``failure_threshold``, ``success_threshold``,
``initial_delay``). See :mod:`otp_py._core.probes` for what the results mean and
:mod:`otp_py.runtime.probes` for how attempts run::

    otp.ChildSpec.command(
        "web", "python -m http.server --bind 127.0.0.1 8000",
        readiness=otp.probes.Http("http://127.0.0.1:8000/", interval=0.2),
        liveness=otp.probes.Http("http://127.0.0.1:8000/", interval=2, timeout=1),
    )
"""

from otp_py._core.probes import Call, Exec, Http, Probe, Tcp, detection_bound

__all__ = ["Call", "Exec", "Http", "Probe", "Tcp", "detection_bound"]
