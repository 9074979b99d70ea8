"""A partitioned supervisor: N identical partitions, each key routed to one.

Elixir's ``PartitionSupervisor`` in otp_py's terms. :func:`partitioned` builds a plain
:class:`~otp_py.SupervisorSpec` (one_for_one unless told otherwise) whose children are
``partitions`` copies of one template, with ids ``"0"`` to ``"N-1"``. On a running
tree, ``sup.partition(key)`` (on a handle of that supervisor) says which partition a
key belongs to, by a hash that is the same in every process and every run (see
:func:`otp_py._core.partition.partition_of`), and ``sup.start_child_in(key, ...)``
starts a child in it, when the partitions are (dynamic) supervisors. Spreading
dynamic children over several supervisors keeps one supervisor's mailbox from being
the bottleneck of a busy tree, as in Elixir.
"""

from __future__ import annotations

from typing import Any

import attrs

from otp_py._core.names import declared_names
from otp_py._errors import SpecError, SpecTypeError
from otp_py.spec import ChildSpec, SupervisorSpec

__all__ = ["partitioned"]


def partitioned(
    id: str,
    template: ChildSpec | SupervisorSpec,
    *,
    partitions: int,
    **fields: Any,
) -> SupervisorSpec:
    """A supervisor spec with ``partitions`` copies of ``template`` as its children.

    The copies have ids ``"0"``, ``"1"``... (``template.id`` is not used); every other
    field is the template's. ``fields`` are the supervisor's own
    (``strategy``, ``intensity``, ``restart``...; not ``children``). The template
    and its children may not carry a ``name``: every partition would share it.

    Raises :class:`~otp_py.SpecError` naming the supervisor and the field for a
    ``partitions`` that is not a positive int, a template that is not a spec, or a
    named template.
    """
    if isinstance(partitions, bool) or not isinstance(partitions, int):
        raise SpecTypeError(id, "partitions", f"expected a positive int; got {partitions!r}")
    if partitions < 1:
        raise SpecError(id, "partitions", f"expected a positive int; got {partitions!r}")
    if not isinstance(template, ChildSpec | SupervisorSpec):
        raise SpecTypeError(id, "template", f"expected a ChildSpec or SupervisorSpec; got "
                            f"{template!r}")
    if "children" in fields:
        raise SpecError(id, "children", "a partitioned supervisor's children are the copies "
                        "of its template; give partitions=, not children=")
    named = declared_names(template)
    if named:
        name, path = next(iter(named.items()))
        raise SpecError(path[-1], "name", f"name {name!r} is in the template of partitioned "
                        f"supervisor {id!r}: all {partitions} partitions would share it")
    children = [attrs.evolve(template, id=str(index)) for index in range(partitions)]
    return SupervisorSpec(id=id, children=children, **fields)
