"""Seeded synthetic merchants and the links between them, with a documented story.

The story (also written into the data card):

1. Most merchants are honest and independent. Their behaviour (refunds, complaints,
   shipping, customer service) varies widely with category and size.
2. About ``ring_share`` of merchants belong to fraud rings of 3-15 shops run by one
   operator: they share devices, payout accounts, return addresses or owner IDs, and run
   fake orders (sales spikes, bursty reviews), ship late or not at all, or re-register after
   bans (young accounts). Each ring member is only mildly abnormal on its own: rings are
   visible through their links.
3. ``solo_fraud_share`` of merchants are suspicious on their own (no ring): strongly abnormal
   behaviour, few links.
4. Honest look-alikes: shops served by the same logistics agency share a return address,
   family businesses share an owner ID, and some honest new shops have sales spikes.
5. A few ring members are not yet caught (labelled 0), and ``label_noise`` of all labels are
   flipped at random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kinds.merchant_risk.record import MERCHANT_LINK_TYPES as LINK_TYPES


@dataclass(frozen=True)
class MerchantGenerationConfig:
    """Knobs of the merchant generator."""

    n: int = 20_000
    seed: int = 0
    ring_share: float = 0.06
    solo_fraud_share: float = 0.02
    label_noise: float = 0.02
    uncaught_ring_share: float = 0.1


def _behaviour(rng: np.random.Generator, n: int, risk: np.ndarray) -> pd.DataFrame:
    """Behaviour aggregates; ``risk`` in [0, 1] shifts every distribution a little."""
    age = rng.gamma(2.0, 300.0, n) * (1 - 0.7 * risk) + 3
    orders = rng.lognormal(5.0 + 0.4 * risk, 1.3, n).astype(int)
    aov = rng.lognormal(4.3, 0.7, n)
    return pd.DataFrame({
        "account_age_days": age.round(0),
        "orders_30d": orders,
        "gmv_30d": (orders * aov).round(2),
        "refund_rate": rng.beta(2 + 4 * risk, 30 - 12 * risk, n).round(4),
        "return_rate": rng.beta(2 + 3 * risk, 25 - 8 * risk, n).round(4),
        "complaint_rate": rng.beta(1 + 3 * risk, 80 - 40 * risk, n).round(4),
        "negative_review_rate": rng.beta(2 + 3 * risk, 30 - 10 * risk, n).round(4),
        "late_shipment_rate": rng.beta(2 + 4 * risk, 20 - 6 * risk, n).round(4),
        "no_ship_rate": rng.beta(1 + 3 * risk, 150 - 90 * risk, n).round(4),
        "presale_share": rng.beta(1.5 + 2 * risk, 8, n).round(4),
        "cs_response_minutes": rng.lognormal(1.5 + 0.8 * risk, 0.8, n).round(1),
        "sales_spike_ratio": (1 + rng.gamma(1.0 + 2.5 * risk, 0.5, n)).round(3),
        "review_burstiness": rng.beta(2 + 4 * risk, 8, n).round(4),
        "category_spread": np.clip(rng.poisson(2 + 2 * risk, n) + 1, 1, 20),
    })


def _ring_links(rng: np.random.Generator, members: np.ndarray) -> list[tuple[int, int, str]]:
    """Links inside one ring: one or two shared resources, most members connected."""
    shared = rng.choice(len(LINK_TYPES), size=int(rng.integers(1, 3)), replace=False)
    links = []
    for type_index in shared:
        hub = members[0]
        for member in members[1:]:
            if rng.random() < 0.85:
                links.append((int(hub), int(member), LINK_TYPES[type_index]))
            if rng.random() < 0.3:
                other = int(rng.choice(members))
                if other != member:
                    links.append((int(member), other, LINK_TYPES[type_index]))
    return links


def generate_merchants(config: MerchantGenerationConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate (merchants, links) following the module's story."""
    rng = np.random.default_rng(config.seed)
    n = config.n
    order = rng.permutation(n)
    n_ring = int(n * config.ring_share)
    n_solo = int(n * config.solo_fraud_share)
    ring_members, solo = order[:n_ring], order[n_ring:n_ring + n_solo]
    risk = rng.beta(1, 12, n)  # honest baseline: low but not zero
    risk[ring_members] = rng.beta(3, 5, n_ring)  # mildly abnormal alone
    risk[solo] = rng.beta(6, 2, n_solo)  # clearly abnormal alone
    lookalikes = order[n_ring + n_solo:n_ring + n_solo + n // 20]
    risk[lookalikes[: len(lookalikes) // 3]] = rng.beta(2, 5, len(lookalikes) // 3)
    frame = _behaviour(rng, n, risk)
    label = np.zeros(n, dtype=int)
    label[solo] = 1

    links: list[tuple[int, int, str]] = []
    start = 0
    while start < n_ring:
        size = int(rng.integers(3, 16))
        members = ring_members[start:start + size]
        start += size
        if len(members) < 2:
            label[members] = 1
            continue
        links += _ring_links(rng, members)
        caught = rng.random(len(members)) >= config.uncaught_ring_share
        label[members[caught]] = 1
    # honest look-alikes: agencies (shared return address) and families (shared owner id)
    for group_start in range(0, len(lookalikes) - 4, 5):
        group = lookalikes[group_start:group_start + 5]
        link_type = "shared_return_address" if rng.random() < 0.7 else "shared_owner_id"
        links += [(int(group[0]), int(m), link_type) for m in group[1:]]
    # background noise: random links between unrelated merchants
    n_noise = n // 4
    src, dst = rng.integers(0, n, n_noise), rng.integers(0, n, n_noise)
    noise_types = rng.choice(len(LINK_TYPES), n_noise, p=[0.4, 0.1, 0.4, 0.1])
    links += [(int(a), int(b), LINK_TYPES[t]) for a, b, t in zip(src, dst, noise_types, strict=True)
              if a != b]

    flipped = rng.random(n) < config.label_noise
    ids = np.array([f"M{config.seed}-{i:06d}" for i in range(n)])
    frame.insert(0, "merchant_id", ids)
    frame["is_suspicious"] = np.where(flipped, 1 - label, label)
    frame["ring_member"] = np.isin(np.arange(n), ring_members)
    frame["label_flipped"] = flipped
    link_frame = pd.DataFrame(links, columns=["src", "dst", "link_type"]).drop_duplicates()
    link_frame["src"] = ids[link_frame["src"].to_numpy()]
    link_frame["dst"] = ids[link_frame["dst"].to_numpy()]
    return frame, link_frame.reset_index(drop=True)


def merchant_data_card(merchants: pd.DataFrame, links: pd.DataFrame,
                       config: MerchantGenerationConfig) -> str:
    """Markdown data card: story, class balance, links and noise."""
    story = (__doc__ or "").split("The story (also written into the data card):", 1)[-1].strip()
    by_type = links["link_type"].value_counts().sort_index()
    return "\n".join([
        "# Data card: synthetic merchants and links",
        "",
        f"- merchants: {len(merchants):,}; links: {len(links):,}; seed: {config.seed}",
        f"- label `is_suspicious` positive share: {merchants['is_suspicious'].mean():.2%}",
        f"- ring members: {int(merchants['ring_member'].sum()):,}; label noise: "
        f"{config.label_noise:.1%} ({int(merchants['label_flipped'].sum()):,} rows flipped)",
        "- generator: `shopguard data generate merchants` (kinds/merchant_risk/generator.py)",
        "",
        "## Generative story",
        "",
        story,
        "",
        "## Links by type",
        "",
        "| link_type | links |",
        "|---|---|",
        *[f"| {k} | {v:,} |" for k, v in by_type.items()],
        "",
        "`ring_member` and `label_flipped` are generator bookkeeping, never features.",
        "",
    ])
