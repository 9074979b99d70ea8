#!/bin/sh
# Start redis-server with the given arguments, unless the chaos driver asked for a
# failed start: while "$CELERY_STACK_DIR/redis-fail-starts" holds a number above 0,
# count it down and exit with status 1 at once (a crash loop at start, as a bad
# configuration or a corrupt data file gives). Otherwise exec: redis-server keeps
# this process's pid, so the supervisor signals redis itself.
counter="${CELERY_STACK_DIR:-.}/redis-fail-starts"
if [ -s "$counter" ]; then
    left=$(cat "$counter")
    if [ "$left" -gt 0 ] 2>/dev/null; then
        echo $((left - 1)) > "$counter"
        echo "redis-server.sh: failing this start on purpose ($((left - 1)) more to fail)" >&2
        exit 1
    fi
fi
exec redis-server "$@"
