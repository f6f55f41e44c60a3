"""The synthetic ``toy`` dataset: a small shop whose data has structure for Semantic IDs to find.

Items sit in a category tree (top category → sub-category) and their titles name a noun specific
to the sub-category, so text embeddings cluster by category. Users prefer one or two top
categories, often stay in the sub-category of their previous item and favour popular items, so
next-item prediction is learnable. With timestamps, some items are released later than others
and are only bought after their release, so a global temporal split has cold-start items.
Everything comes from one seeded numpy Generator: the same seed gives the same data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from semid.data.config import PrepareConfig, ToyConfig
from semid.data.source import Source

# Top category -> [(sub-category, noun used in titles)], plus words that flavour its titles.
TREE: list[tuple[str, list[tuple[str, str]], list[str]]] = [
    ("Skin Care", [("Moisturizers", "Moisturizer"), ("Cleansers", "Cleanser"), ("Serums", "Serum"),
                   ("Sunscreens", "Sunscreen SPF 50"), ("Face Masks", "Face Mask"), ("Toners", "Toner")],
     ["Hydrating", "Oil-Free", "Fragrance-Free", "Brightening"]),
    ("Hair Care", [("Shampoos", "Shampoo"), ("Conditioners", "Conditioner"), ("Hair Oils", "Hair Oil"),
                   ("Styling Gels", "Styling Gel"), ("Hair Sprays", "Hair Spray"), ("Hair Dryers", "Hair Dryer")],
     ["Volumizing", "Anti-Frizz", "Repairing", "Sulfate-Free"]),
    ("Makeup", [("Lipsticks", "Lipstick"), ("Foundations", "Foundation"), ("Mascaras", "Mascara"),
                ("Eyeliners", "Eyeliner"), ("Blushes", "Blush"), ("Nail Polish", "Nail Lacquer")],
     ["Long-Lasting", "Matte", "Waterproof", "Shimmer"]),
    ("Camping & Hiking", [("Tents", "Tent"), ("Sleeping Bags", "Sleeping Bag"), ("Backpacks", "Hiking Backpack"),
                          ("Headlamps", "Headlamp"), ("Trekking Poles", "Trekking Poles"),
                          ("Camp Stoves", "Camp Stove")],
     ["Ultralight", "Weatherproof", "4-Season", "Rugged"]),
    ("Fitness", [("Yoga Mats", "Yoga Mat"), ("Dumbbells", "Dumbbell Set"), ("Resistance Bands", "Resistance Bands"),
                 ("Jump Ropes", "Jump Rope"), ("Foam Rollers", "Foam Roller"), ("Kettlebells", "Kettlebell")],
     ["Non-Slip", "Heavy-Duty", "Home Gym", "Workout"]),
    ("Office Supplies", [("Pens", "Gel Pens"), ("Notebooks", "Notebook"), ("Staplers", "Stapler"),
                         ("Sticky Notes", "Sticky Notes"), ("Binders", "Ring Binder"),
                         ("Desk Organizers", "Desk Organizer")],
     ["Refillable", "Recycled", "Desktop", "Business"]),
    ("Kitchen", [("Knives", "Chef Knife"), ("Cutting Boards", "Cutting Board"), ("Frying Pans", "Frying Pan"),
                 ("Coffee Makers", "Coffee Maker"), ("Blenders", "Blender"), ("Food Storage", "Food Containers")],
     ["Stainless Steel", "Nonstick", "Dishwasher-Safe", "BPA-Free"]),
    ("Toys & Games", [("Board Games", "Board Game"), ("Puzzles", "Jigsaw Puzzle"), ("Building Sets", "Building Blocks"),
                      ("Action Figures", "Action Figure"), ("Plush Toys", "Plush Toy"), ("Card Games", "Card Game")],
     ["Family", "Educational", "Collectible", "Kids"]),
    ("Pet Supplies", [("Dog Food", "Dry Dog Food"), ("Cat Litter", "Cat Litter"), ("Pet Beds", "Pet Bed"),
                      ("Leashes", "Dog Leash"), ("Aquariums", "Aquarium Kit"), ("Bird Cages", "Bird Cage")],
     ["Grain-Free", "Odor-Control", "Orthopedic", "Reflective"]),
    ("Electronics", [("Headphones", "Headphones"), ("Chargers", "USB-C Charger"), ("Keyboards", "Keyboard"),
                     ("Webcams", "Webcam"), ("Speakers", "Bluetooth Speaker"), ("Cables", "HDMI Cable")],
     ["Wireless", "Fast-Charging", "Noise-Cancelling", "4K"]),
]
ADJECTIVES = ["Premium", "Classic", "Compact", "Gentle", "Professional", "Natural", "Deluxe", "Everyday",
              "Advanced", "Organic", "Portable", "Durable", "Essential", "Original", "Mini", "Travel"]
VARIANTS = ["", "", "Pack of 2", "Large", "Set of 3", "Travel Size", "Black", "Value Pack"]
BRAND_HEADS = ["Aur", "Bel", "Cor", "Del", "Eco", "Fin", "Gal", "Hal", "Ion", "Jun", "Kel", "Lum",
               "Mar", "Nov", "Oro", "Pel", "Quin", "Ros", "Sol", "Ter", "Ul", "Ver", "Wes", "Zen"]
BRAND_TAILS = ["a", "ora", "ix", "elle", "on", "ara", "is", "um", "o", "ette", "ia", "ex"]

START = 1_420_070_400  # 2015-01-01
SPAN = 3 * 365 * 86_400  # events spread over three years
P_STAY = 0.55  # next item from the previous item's sub-category
P_PREFERRED = 0.85  # otherwise: from a preferred top category (else anywhere)
ZIPF = 0.6  # popularity exponent
MIN_EVENTS = 5  # events every item gets, where the data allows
LATE_SHARE = 0.3  # items released after the start, uniformly over the first 95% of the span


def _numbered(names: list[str], n: int) -> list[str]:
    """``n`` names: the list, then the list again with " 2", " 3", ... when it runs out."""
    return [names[i % len(names)] + ("" if i < len(names) else f" {i // len(names) + 1}") for i in range(n)]


def _catalogue(cfg: ToyConfig, rng: np.random.Generator) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Items, their sub-category index and their release time as a share of the span."""
    n_top, n_sub, n = cfg.n_top_categories, cfg.n_sub_categories, cfg.n_items
    order = rng.permutation(len(TREE))
    tops = [TREE[order[t % len(TREE)]] for t in range(n_top)]
    # Past the end of the word list, tops repeat with a number ("Kitchen 2").
    top_names = [name + (f" {t // len(TREE) + 1}" if t >= len(TREE) else "") for t, (name, _, _) in enumerate(tops)]
    subs = [_numbered([s for s, _ in t[1]], n_sub) for t in tops]
    nouns = [_numbered([w for _, w in t[1]], n_sub) for t in tops]

    # Brands: each specialises in one or two top categories.
    combos = [h + t for h in BRAND_HEADS for t in BRAND_TAILS]
    brand_names = _numbered([combos[i] for i in rng.permutation(len(combos))], cfg.n_brands)
    brand_tops = [{b % n_top, int(rng.integers(n_top))} for b in range(cfg.n_brands)]
    by_top = [[b for b in range(cfg.n_brands) if t in brand_tops[b]] or list(range(cfg.n_brands))
              for t in range(n_top)]

    # Round robin over top categories, then their sub-categories (shuffled), so that none is
    # left empty and a small catalogue still spans every top category.
    k = np.arange(n)
    sub_of = rng.permutation((k % n_top) * n_sub + (k // n_top) % n_sub)
    price_level = rng.lognormal(3.0, 0.6, size=n_top * n_sub)  # typical price of each sub-category
    rows = []
    for i in range(n):
        t, s = divmod(int(sub_of[i]), n_sub)
        brand = brand_names[by_top[t][int(rng.integers(len(by_top[t])))]]
        adj = ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]
        qual = tops[t][2][int(rng.integers(len(tops[t][2])))]
        variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
        title = f"{brand} {adj} {qual} {nouns[t][s]}" + (f", {variant}" if variant else "")
        price = price_level[t * n_sub + s] * rng.lognormal(0.0, 0.25)
        rows.append({
            "asin": f"TOY{i:07d}",
            "title": title,
            "brand": brand,
            "categories": [top_names[t], subs[t][s]],
            "price": f"${price:.2f}",
            "description": f"{qual} {nouns[t][s]} by {brand}, made for everyday {top_names[t].lower()} needs.",
        })
    release = np.zeros(n)
    if cfg.with_timestamps:
        late = rng.permutation(n)[: int(LATE_SHARE * n)]
        release[late] = rng.uniform(0.0, 0.95, size=len(late))
    return pl.DataFrame(rows), sub_of, release


class _Picker:
    """Popularity-weighted draws among the items of a group released by a given time."""

    def __init__(self, members: np.ndarray, release: np.ndarray, weight: np.ndarray):
        order = np.argsort(release[members], kind="stable")
        self.items = members[order]
        self.release = release[self.items]
        self.cum = np.cumsum(weight[self.items])

    def draw(self, t: float, u: float) -> int | None:
        k = int(np.searchsorted(self.release, t, side="right"))  # items out by time t
        if k == 0:
            return None
        return int(self.items[min(int(np.searchsorted(self.cum, u * self.cum[k - 1], side="right")), k - 1)])


def _users(toy: ToyConfig, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each user's preferred top categories and event times (shares of the span, increasing)."""
    lo, hi = min(toy.min_len, toy.max_len), max(toy.min_len, toy.max_len)
    out = []
    for _ in range(toy.n_users):
        length = int(rng.integers(lo, hi + 1))
        preferred = rng.choice(toy.n_top_categories, size=1 + int(rng.random() < 0.5), replace=False)
        # Active for 1 to 12 months around a uniform centre, cut to the span: this keeps the event
        # density nearly flat up to the end, where the latest (cold-start) items are released.
        centre, active = rng.uniform(0.0, 1.0), rng.uniform(1 / 36, 1 / 3)
        begin, end = max(0.0, centre - active / 2), min(1.0, centre + active / 2)
        out.append((preferred, np.sort(rng.uniform(begin, end, size=length))))
    return out


def _top_up(users: np.ndarray, items: np.ndarray, times: np.ndarray, sub_of: np.ndarray,
            n_sub: int, release: np.ndarray, rng: np.random.Generator) -> None:
    """Give every item at least MIN_EVENTS events (in place), so the 5-core keeps the catalogue.

    Chance leaves a few tail or late items short; each takes over events of well-used items,
    from its own sub-category first, after its release and from users who lack it, so the
    category structure, the release order and the no-repeat rule all hold.
    """
    counts = np.bincount(items, minlength=len(sub_of))
    for i in np.flatnonzero(counts < MIN_EVENTS):
        owners = set(users[items == i].tolist())
        for same in (sub_of == sub_of[i], sub_of // n_sub == sub_of[i] // n_sub, np.ones(len(sub_of), bool)):
            ok = np.flatnonzero(same[items] & (times >= release[i]) & (counts[items] > MIN_EVENTS))
            for e in rng.permutation(ok):
                if counts[i] >= MIN_EVENTS:
                    break
                if users[e] in owners or counts[items[e]] <= MIN_EVENTS:
                    continue
                counts[items[e]] -= 1
                items[e], counts[i] = i, counts[i] + 1
                owners.add(int(users[e]))


def read_toy(path: Path | None, cfg: PrepareConfig) -> Source:
    """Generate the toy dataset (``path`` is ignored)."""
    toy = cfg.toy
    rng = np.random.default_rng(cfg.seed)
    items, sub_of, release = _catalogue(toy, rng)
    n, n_sub = toy.n_items, toy.n_sub_categories
    n_groups = toy.n_top_categories * n_sub
    users = _users(toy, rng)

    # Zipf-like popularity by rank within the sub-category (a global rank would starve the tail
    # below the 5-core). A late item is boosted by the inverse share of events after its release,
    # so it still expects as many events as an item out from the start.
    rank = np.empty(n)
    for g in range(n_groups):
        members = np.flatnonzero(sub_of == g)
        rank[members] = rng.permutation(len(members)) + 1
    all_times = np.sort(np.concatenate([when for _, when in users]))
    after = 1.0 - np.searchsorted(all_times, release, side="left") / len(all_times)
    weight = rank ** -ZIPF / np.maximum(after, 1e-3)
    groups = [_Picker(np.flatnonzero(sub_of == g), release, weight) for g in range(n_groups)]
    tops = [_Picker(np.flatnonzero(sub_of // n_sub == t), release, weight) for t in range(toy.n_top_categories)]
    anywhere = _Picker(np.arange(n), release, weight)

    rows_user, rows_item, rows_time = [], [], []
    for u, (preferred, when) in enumerate(users):
        draws = rng.random((len(when), 5))
        seen: set[int] = set()
        prev = None
        for j, r in enumerate(draws):
            if prev is not None and r[0] < P_STAY:
                picker = groups[sub_of[prev]]
            elif r[1] < P_PREFERRED:
                picker = tops[int(preferred[int(r[2] * len(preferred))])]
            else:
                picker = anywhere
            item = None
            for attempt in range(4):  # avoid repeats: dedup would shorten the sequence
                u_draw = r[3] if attempt == 0 else rng.random()
                cand = (picker if attempt < 3 else anywhere).draw(when[j], u_draw)
                if cand is not None and cand not in seen:
                    item = cand
                    break
            if item is None:  # fall back to any released item not yet chosen
                fresh = [i for i in np.flatnonzero(release <= when[j]) if i not in seen]
                item = int(fresh[int(r[4] * len(fresh))]) if fresh else int(np.argmin(release))
            seen.add(item)
            prev = item
            rows_item.append(item)
        rows_user += [u] * len(when)
        # Whole seconds, strictly increasing (adding j seconds keeps every event after its release).
        rows_time.append(np.round(when * SPAN).astype(np.int64) + np.arange(len(when)))

    user_idx, item_idx = np.asarray(rows_user), np.asarray(rows_item)
    _top_up(user_idx, item_idx, np.concatenate([when for _, when in users]), sub_of, n_sub, release, rng)
    stamps = START + np.concatenate(rows_time)
    interactions = pl.DataFrame({
        "user": [f"U{u:06d}" for u in rows_user],
        "item": items["asin"].to_numpy()[item_idx],
        "timestamp": pl.Series(stamps if toy.with_timestamps else [None] * len(rows_user), dtype=pl.Int64),
    })
    return Source(interactions, items, files=[], notes={"synthetic": True})
