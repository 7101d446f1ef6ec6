"""``--db-map SRC:DST,...``: which target database each source database goes to. One parser
and one rule for copy, sync and verify: databases not named keep their number, and no two
source databases may share a target database (their keys would overwrite each other there
without a word)."""

from __future__ import annotations

from migrate.errors import UsageError


class DbMap(dict[int, int]):
    """Source database -> target database (only those the user named)."""

    def to(self, db: int) -> int:
        """The target database of source database ``db``."""
        return self.get(db, db)

    def back(self, db: int) -> int:
        """The source database whose keys go to target database ``db``."""
        for source, target in self.items():
            if target == db:
                return source
        return db

    def describe(self) -> dict[str, int]:
        """For JSON: {"0": 1, ...}."""
        return {str(k): v for k, v in self.items()}


def parse_db_map(text: str | None) -> DbMap:
    """``"0:1,2:3"`` -> {0: 1, 2: 3}."""
    mapping = DbMap()
    if not text:
        return mapping
    for part in text.split(","):
        src, sep, dst = part.strip().partition(":")
        if not sep or not src.strip().isdigit() or not dst.strip().isdigit():
            raise UsageError(f"bad --db-map entry {part.strip()!r}",
                             "expected SRC:DST pairs such as 0:0,1:5")
        if int(src) in mapping:
            raise UsageError(f"--db-map names source database {src.strip()} twice")
        mapping[int(src)] = int(dst)
    targets = list(mapping.values())
    shared = sorted({t for t in targets if targets.count(t) > 1})
    if shared:
        raise UsageError(f"--db-map sends two source databases into target database "
                         f"{shared[0]}: their keys would overwrite each other",
                         "map each source database to its own target database")
    return mapping
