"""The catalogue a loaded run serves: items with titles and Semantic IDs, lookup by item ID or
ASIN, title search, and the tree of ID prefixes with each branch's most telling title words."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semid.core.errors import SemidError
from semid.core.run import RunFolder
from semid.ids.table import has_extra_code, load_semantic_ids
from semid.models.pop import counts
from semid.sequences import sequences

WORD = re.compile(r"[a-z][a-z'&-]{2,}")
STOP = frozenset("and the for with from by of in on to oz fl ml pack count set new size each one two inch pcs piece "
                 "pieces ounce ounces".split())


class InputError(SemidError):
    """A request the service cannot answer as asked (HTTP ``status``); the message names the problem."""

    status = 422


class NotFound(InputError):
    status = 404


class Catalogue:
    """Items (``item_id`` 0..N-1, ``asin``, ``title``) with their Semantic IDs from ``ids_folder``."""

    def __init__(self, run: RunFolder, ids_folder: Path):
        items = run.table("items").sort("item_id")
        self.asins: list[str] = [str(a) for a in items["asin"].to_list()]
        self.titles: list[str] = [t or a for t, a in zip(items["title"].to_list(), self.asins)]
        self.index = {a: i for i, a in enumerate(self.asins)}
        codes, self.levels, self.codebook_size = load_semantic_ids(ids_folder)
        if len(codes) != len(self.asins):
            raise SemidError(f"{ids_folder} holds IDs for {len(codes)} items but the run has {len(self.asins)}")
        self.extra_code = has_extra_code(ids_folder)
        self.id_length = self.levels + self.extra_code  # codes per ID: L (+ TIGER's collision code)
        self.codes = codes[:, :self.id_length]
        self._sids: list[list[int]] = self.codes.tolist()  # as Python ints, once (every answer lists 30 items)
        self.ids_name = Path(ids_folder).name
        self.popularity = counts(sequences(run.table("train")), len(self.asins))
        self._lower = [t.lower() for t in self.titles]
        self._words = [frozenset(w for w in WORD.findall(t) if w not in STOP) for t in self._lower]
        df = Counter(w for ws in self._words for w in ws)
        self._idf = {w: math.log(len(self.asins) / n) for w, n in df.items()}
        self._trees: dict[tuple[int, ...], dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self.asins)

    # ---- lookup ------------------------------------------------------------------------------
    def resolve(self, keys: Sequence[int | str]) -> list[int]:
        """Item IDs of ``keys``: ints are item IDs, strings ASINs (or item IDs written as digits).
        Every unknown key is named in one NotFound."""
        out, unknown = [], []
        for key in keys:
            i = self._one(key)
            if i is None:
                unknown.append(repr(key))
            else:
                out.append(i)
        if unknown:
            raise NotFound(f"unknown item{'s' if len(unknown) > 1 else ''} {', '.join(unknown[:10])}"
                           f"{' …' if len(unknown) > 10 else ''}: pass item IDs 0..{len(self) - 1} or ASINs of this run's catalogue")
        return out

    def _one(self, key: int | str) -> int | None:
        if isinstance(key, str):
            if key in self.index:
                return self.index[key]
            key = int(key) if key.isdigit() else -1
        return key if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(self) else None

    def describe(self, item: int) -> dict[str, Any]:
        return {"item_id": int(item), "asin": self.asins[item], "title": self.titles[item],
                "sid": list(self._sids[item])}

    # ---- search ------------------------------------------------------------------------------
    def search(self, text: str, limit: int = 20) -> list[dict[str, Any]]:
        """Items whose title holds every word of ``text`` (or whose ASIN is ``text``), most popular first."""
        terms = text.lower().split()
        if not terms:
            raise InputError("the search text is empty: type a few words of a title, or an ASIN")
        exact = [self.index[text.strip()]] if text.strip() in self.index else []
        hits = [i for i, t in enumerate(self._lower) if all(term in t for term in terms)]
        hits.sort(key=lambda i: -self.popularity[i])
        return [self.describe(i) for i in dict.fromkeys(exact + hits[:limit])][:limit]

    # ---- the code tree -----------------------------------------------------------------------
    def check_prefix(self, prefix: Sequence[int]) -> tuple[int, ...]:
        prefix = tuple(int(c) for c in prefix)
        if len(prefix) > self.id_length:
            raise InputError(f"a Semantic ID here has {self.id_length} codes; the prefix {list(prefix)} is longer")
        if any(c < 0 for c in prefix):
            raise InputError(f"codes are non-negative; got {list(prefix)}")
        return prefix

    def under(self, prefix: Sequence[int]) -> np.ndarray:
        """Item IDs whose Semantic ID starts with ``prefix``, most popular first."""
        prefix = self.check_prefix(prefix)
        hit = (self.codes[:, :len(prefix)] == np.asarray(prefix, dtype=np.int64)).all(1)
        ids = np.flatnonzero(hit)
        return ids[np.argsort(-self.popularity[ids], kind="stable")]

    def items_under(self, prefix: Sequence[int], limit: int = 50) -> dict[str, Any]:
        ids = self.under(prefix)
        return {"prefix": list(self.check_prefix(prefix)), "count": len(ids), "items": [self.describe(i) for i in ids[:limit]]}

    def words(self, ids: Sequence[int], n: int = 4) -> list[str]:
        """The words that best tell these items' titles apart from the catalogue's (count × idf)."""
        c = Counter(w for i in ids for w in self._words[i])
        return [w for w, _ in sorted(c.items(), key=lambda kv: (-kv[1] * self._idf[kv[0]], kv[0]))[:n]]

    def tree(self, prefix: Sequence[int] = ()) -> dict[str, Any]:
        """The branches below ``prefix``: each next code with its item count and words; at the last
        level (the collision code, or the L-th code of IDs unique at L codes) each branch is one item."""
        prefix = self.check_prefix(prefix)
        if prefix not in self._trees:
            ids = self.under(prefix)
            if len(ids) == 0:
                raise NotFound(f"no item's Semantic ID starts with {list(prefix)}")
            branches: dict[int, list[int]] = {}
            for i in ids:
                if len(prefix) < self.id_length:
                    branches.setdefault(int(self.codes[i, len(prefix)]), []).append(int(i))
            children = [{"code": c, "count": len(m), "words": self.words(m),
                         "item": self.describe(m[0]) if len(prefix) == self.id_length - 1 else None}
                        for c, m in sorted(branches.items())]
            self._trees[prefix] = {"prefix": list(prefix), "depth": self.id_length, "count": len(ids),
                                   "words": self.words(ids), "children": children}
        return self._trees[prefix]

    def shared_prefix(self, sid: Sequence[int]) -> tuple[int, np.ndarray]:
        """(longest prefix length of ``sid`` that catalogue items share, those items most popular first)."""
        for n in range(len(sid), 0, -1):
            ids = self.under(sid[:n])
            if len(ids):
                return n, ids
        return 0, np.zeros(0, dtype=np.int64)
