"""The tree's name registry: tree-wide child names, as Erlang's registered names.

The names a tree's spec declares are found (and their uniqueness checked) by the pure
:func:`otp_py._core.names.declared_names` when the tree is started; they belong to
their paths for the tree's whole life, so a restarted child (or a restarted
supervisor's children) keeps its name. Names that ``start_child`` brings (a
``ChildSpec(name=...)`` given to a static supervisor, ``start_child(name=...)`` on a
simple_one_for_one one) are added when the start succeeds. Such a child can leave
(a temporary child ends, its supervisor restarts without it...) without telling the
registry, so its entry is checked when it matters: an entry whose path no longer
holds a child carrying that name is stale, and is dropped.

Only the tree's loop touches a registry; the claim made before a start's ``await``
keeps two concurrent starts from taking one name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from otp_py._errors import NameTakenError

__all__ = ["NameRegistry"]

Path = tuple[str, ...]


class NameRegistry:
    """Name -> child path, for one tree."""

    def __init__(self, declared: dict[str, Path]) -> None:
        self._declared = dict(declared)
        self._added: dict[str, Path] = {}
        self._claimed: set[str] = set()

    def lookup(self, name: str) -> Path | None:
        """The path registered for ``name`` (possibly stale if it was added)."""
        return self._declared.get(name) or self._added.get(name)

    def is_declared(self, name: str) -> bool:
        return name in self._declared

    async def claim(self, names: Iterable[str], holds: Callable[[str, Path], Awaitable[bool]],
                    ) -> None:
        """Reserve ``names`` for a start about to be made, or raise
        :class:`~otp_py.NameTakenError` (reserving none). ``holds(name, path)`` says
        whether an added entry is still true."""
        wanted = list(names)
        for name in wanted:
            await self._check_free(name, holds)
        taken = [n for n in wanted if n in self._claimed]  # claimed while we awaited
        if taken:
            raise self._taken(taken[0], None)
        self._claimed.update(wanted)

    async def _check_free(self, name: str, holds: Callable[[str, Path], Awaitable[bool]]
                          ) -> None:
        declared = self._declared.get(name)
        if declared is not None:
            raise self._taken(name, declared)
        if name in self._claimed:
            raise self._taken(name, None)
        added = self._added.get(name)
        if added is not None:
            if await holds(name, added):
                raise self._taken(name, added)
            if self._added.get(name) == added:
                del self._added[name]

    async def check_declared(self, declared: dict[str, Path],
                             holds: Callable[[str, Path], Awaitable[bool]]) -> None:
        """Whether a reload may declare ``declared`` instead of the names declared so
        far: raises :class:`~otp_py.NameTakenError` if a newly declared name belongs
        to a child that ``start_child`` added, or to a start in progress."""
        for name, path in declared.items():
            if self._declared.get(name) == path:
                continue
            if name in self._claimed:
                raise self._taken(name, None)
            added = self._added.get(name)
            if added is not None and added != path and await holds(name, added):
                raise self._taken(name, added)

    def declare(self, declared: dict[str, Path]) -> None:
        """A reload has declared ``declared`` (checked by :meth:`check_declared`)."""
        for name in declared:
            self._added.pop(name, None)
        self._declared = dict(declared)

    def release(self, names: Iterable[str]) -> None:
        """A claimed start failed: the names are free again."""
        self._claimed.difference_update(names)

    def register(self, names: dict[str, Path]) -> None:
        """A claimed start succeeded: the names now belong to these paths."""
        self._claimed.difference_update(names)
        self._added.update(names)

    def forget(self, name: str, path: Path) -> None:
        """An added entry turned out stale."""
        if self._added.get(name) == path:
            del self._added[name]

    def _taken(self, name: str, path: Path | None) -> NameTakenError:
        where = "another start in progress" if path is None else repr("/".join(path))
        return NameTakenError(name, path or (), f"name {name!r} is already taken in this "
                              f"tree (by {where}); names are unique across a tree")
