"""A prefix trie over Semantic IDs, stored as arrays so a whole batch of beams steps at once.

Nodes at depth ``d`` are the distinct ID prefixes of length ``d``, numbered in lexicographic
order. The children of all depth-``d`` nodes are kept as one sorted array of keys
``parent * W_d + code`` (``W_d`` = width of level ``d``); a child's node number is its key's
position in that array. So "which tokens may follow each of these beams" is one
``searchsorted`` (or, for small levels, one gather from a dense table) for the whole batch: no
Python per beam. Leaves (depth ``L + 1``) map to item ids.
"""

from __future__ import annotations

import numpy as np
import torch

from semid.generative.tokens import SIDTokenizer

DENSE_LIMIT = 1 << 23  # dense child table when nodes * width is at most this many entries


class PrefixTrie:
    """Trie over the IDs of ``items`` (all items by default).

    >>> trie = PrefixTrie(tokenizer)
    >>> child = trie.children(depth, nodes)   # int64 [..., W_depth], -1 where no child
    >>> trie.leaf_items(nodes)                 # item id of each depth-(L+1) node
    """

    def __init__(self, tokenizer: SIDTokenizer, items: np.ndarray | None = None):
        self.tokenizer = tokenizer
        self.depth = tokenizer.id_length
        self.widths = [tokenizer.level_width(d) for d in range(self.depth)]
        items = np.arange(tokenizer.num_items) if items is None else np.asarray(items, dtype=np.int64)
        codes = tokenizer.codes[items]
        # sort items by ID so that every depth's prefixes come out in lexicographic order
        order = np.lexsort(codes.T[::-1]) if len(items) else np.zeros(0, dtype=np.int64)
        codes, items = codes[order], items[order]
        self.keys: list[torch.Tensor] = []
        self.dense: list[torch.Tensor | None] = []
        parent = np.zeros(len(items), dtype=np.int64)  # node id of each item's prefix at depth d
        n_nodes = 1
        for d in range(self.depth):
            key = parent * self.widths[d] + codes[:, d]
            uniq, node_of_item = np.unique(key, return_inverse=True)
            self.keys.append(torch.from_numpy(uniq))
            if n_nodes * self.widths[d] <= DENSE_LIMIT:
                table = torch.full((n_nodes * self.widths[d],), -1, dtype=torch.int64)
                table[torch.from_numpy(uniq)] = torch.arange(len(uniq))
                self.dense.append(table)
            else:
                self.dense.append(None)
            parent, n_nodes = node_of_item.reshape(-1), len(uniq)
        if n_nodes != len(items):
            raise ValueError("two items share one Semantic ID: the dedup code must make IDs unique")
        leaf_items = np.empty(n_nodes, dtype=np.int64)
        leaf_items[parent] = items
        self.leaf_item = torch.from_numpy(leaf_items)
        self.num_items = len(items)

    def to(self, device: torch.device | str) -> PrefixTrie:
        self.keys = [k.to(device) for k in self.keys]
        self.dense = [t.to(device) if t is not None else None for t in self.dense]
        self.leaf_item = self.leaf_item.to(device)
        return self

    def children(self, depth: int, nodes: torch.Tensor) -> torch.Tensor:
        """nodes int64 [...] at ``depth`` (-1 = dead beam) → child node per code, [..., W], -1 = none."""
        w = self.widths[depth]
        codes = torch.arange(w, device=nodes.device)
        query = nodes[..., None].clamp(min=0) * w + codes
        if self.dense[depth] is not None:
            child = self.dense[depth][query]
        else:
            keys = self.keys[depth]
            pos = torch.searchsorted(keys, query).clamp(max=max(len(keys) - 1, 0))
            child = torch.where(keys[pos] == query, pos, torch.full_like(pos, -1)) if len(keys) else -torch.ones_like(query)
        return child.masked_fill(nodes[..., None] < 0, -1)

    def leaf_items(self, nodes: torch.Tensor) -> torch.Tensor:
        """Leaf node ids (-1 = none) → item ids (-1 = none)."""
        return torch.where(nodes >= 0, self.leaf_item[nodes.clamp(min=0)], torch.full_like(nodes, -1))

    def contains(self, item_tokens: torch.Tensor) -> torch.Tensor:
        """bool [...]: is each ID (tokens [..., L+1]) in the trie? Walks the arrays (for checks)."""
        node = torch.zeros(item_tokens.shape[:-1], dtype=torch.int64, device=item_tokens.device)
        codes = self.tokenizer.to_codes(item_tokens)
        for d in range(self.depth):
            ok = (codes[..., d] >= 0) & (codes[..., d] < self.widths[d])
            child = self.children(d, node).gather(-1, codes[..., d].clamp(0, self.widths[d] - 1)[..., None])[..., 0]
            node = torch.where(ok, child, torch.full_like(child, -1))
        return node >= 0
