"""The web observer: a running tree in a browser, with its history and its controls.

``otp-py run TREE --web 127.0.0.1:8080`` serves it next to the tree; from a program
of your own, serve it on the tree's loop::

    recorder = Recorder()  # sees the tree from its first report
    async with otp.supervise(tree, on_report=recorder) as sup:
        observer, url = await serve_web(sup, tree, "127.0.0.1", 8080, recorder=recorder)
        async with observer:
            print("observer at", url)
            await sup.wait()

or mount :meth:`WebObserver.app` in an aiohttp application. It needs the ``web``
extra (``pip install 'otp_py[web]'``: aiohttp). See :mod:`otp_py.web.server`.
"""

from otp_py.web.server import (
    BUDGET_REFRESH,
    SETTLE,
    Recorder,
    WebAddressError,
    WebObserver,
    is_loopback,
    serve_web,
)

__all__ = [
    "BUDGET_REFRESH",
    "SETTLE",
    "Recorder",
    "WebAddressError",
    "WebObserver",
    "is_loopback",
    "serve_web",
]
