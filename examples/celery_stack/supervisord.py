"""The same stack under supervisord, configured the way Celery's documentation does.

Celery's docs ("Daemonization", supervisord) point at ``extra/supervisord/`` in its
repository: ``supervisord.conf`` (a unix socket, the rpcinterface, supervisorctl), and
one program section per process, ``celeryd.conf`` for workers and ``celerybeat.conf``
for beat. :func:`render` writes those sections with their documented settings
unchanged (``autostart``, ``autorestart``, ``startsecs=10``, ``stopwaitsecs=600``,
``killasgroup=true``, ``priority`` 998/999/1000 so that a supervised broker starts
first), with this stack's paths and command lines. Differences, each needed to run
it here:

* ``nodaemon=true`` (Celery's file says ``false``): the chaos driver starts supervisord
  in the foreground so that it knows its pid (to kill it) and reaps it;
* no ``user=nobody``: the stack runs as whoever runs the driver;
* ``numprocs=2`` on the worker program (Celery's example has one worker), with the
  process number in the node name (``-n w%(process_num)d@%%h``);
* Redis and the web app have no section in Celery's files; they get the plainest one
  (``autorestart=true``, every other setting supervisord's default), Redis with the
  lowest priority so it starts first, as Celery's comments advise.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from examples.celery_stack.tree import Stack


def _command(argv: list[str]) -> str:
    # supervisord splits ``command`` with shlex and expands %(...)s: a literal % is %%
    return shlex.join(argv).replace("%", "%%")


def _environment(env: dict[str, str]) -> str:
    return ",".join(f'{key}="{value}"' for key, value in env.items())


def render(stack: Stack) -> str:
    """The supervisord configuration of ``stack``."""
    logs = f"{stack.dir}/logs"
    env = _environment(stack.env())
    worker = _command(stack.worker_argv("w@NUM@")).replace("w@NUM@", "w%(process_num)d")
    return f"""\
; The Celery stack under supervisord, after Celery's extra/supervisord/ files.
[unix_http_server]
file={stack.dir}/supervisor.sock

[supervisord]
logfile={logs}/supervisord.log
logfile_maxbytes=50MB
logfile_backups=10
loglevel=info
pidfile={stack.dir}/supervisord.pid
nodaemon=true
minfds=1024
minprocs=200
childlogdir={logs}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{stack.dir}/supervisor.sock

[program:redis]
command={_command(stack.redis_argv())}
environment=CELERY_STACK_DIR="{stack.dir}"
stdout_logfile={logs}/redis.log
redirect_stderr=true
autostart=true
autorestart=true
priority=100

; ==================================
;  celery worker supervisor example
; ==================================
[program:celery]
command={worker}
process_name=%(program_name)s_w%(process_num)d
numprocs=2
numprocs_start=1
directory={stack.root}
environment={env}
stdout_logfile={logs}/worker_w%(process_num)d.log
stderr_logfile={logs}/worker_w%(process_num)d.log
autostart=true
autorestart=true
startsecs=10

; Need to wait for currently executing tasks to finish at shutdown.
; Increase this if you have very long running tasks.
stopwaitsecs = 600

; When resorting to send SIGKILL to the program to terminate it
; send SIGKILL to its whole process group instead,
; taking care of its children as well.
killasgroup=true

; Set Celery priority higher than default (999)
; so, if rabbitmq is supervised, it will start first.
priority=1000

; ================================
;  celery beat supervisor example
; ================================
[program:celerybeat]
command={_command(stack.beat_argv())}
directory={stack.root}
environment={env}
stdout_logfile={logs}/beat.log
stderr_logfile={logs}/beat.log
autostart=true
autorestart=true
startsecs=10

; if rabbitmq is supervised, set its priority higher
; so it starts first
priority=999

[program:web]
command={_command(stack.web_argv())}
directory={stack.root}
environment={env}
stdout_logfile={logs}/web.log
redirect_stderr=true
autostart=true
autorestart=true
priority=1001
"""


def rpc(stack: Stack) -> Any:
    """An XML-RPC proxy to the supervisord of ``stack`` (``supervisor.*`` methods)."""
    import xmlrpc.client

    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{Path(stack.dir, 'supervisor.sock')}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
