"""Tests for the Kneser-Ney trigram baseline."""

from __future__ import annotations

import zlib

import pytest
import torch

from input_method.ngram import KneserNeyTrigram, mix_log_probs

V = 8


def _triples() -> tuple[torch.Tensor, torch.Tensor]:
    # Sentences over ids 3..7 with <s>=2 and <pad>=0, as (u, v) -> w triples.
    sentences = [[2, 3, 4, 5], [2, 3, 4, 6], [2, 3, 5, 7], [2, 4, 5, 6], [2, 3, 4, 5]]
    contexts, targets = [], []
    for s in sentences:
        padded = [0, 0, *s]
        for i in range(3, len(padded)):
            contexts.append(padded[i - 2:i])
            targets.append(padded[i])
    return torch.tensor(contexts), torch.tensor(targets)


def _model() -> KneserNeyTrigram:
    return KneserNeyTrigram(V, *_triples())


def test_distributions_sum_to_one_for_seen_and_unseen_contexts():
    """Every context, seen or not, gives a proper distribution over the vocabulary."""
    model = _model()
    contexts = torch.tensor([[3, 4], [2, 3], [7, 7], [0, 2], [6, 1]])
    probs = model.log_probs(contexts).double().exp()
    assert torch.allclose(probs.sum(1), torch.ones(len(contexts), dtype=torch.double), atol=1e-5)
    assert (probs > 0).all()


def test_seen_trigram_beats_unseen_and_matches_the_formula():
    """P(5 | 3 4) follows the interpolated Kneser-Ney formula, computed by hand here."""
    model = _model()
    p = model.log_probs(torch.tensor([[3, 4]])).double().exp()[0]
    assert p[5] > p[6] > p[7]
    # c(3 4 5) = 2, c(3 4 6) = 1, c(3 4 .) = 3, two word types follow "3 4".
    d3 = model.d3
    lower = model.log_probs(torch.tensor([[7, 4]])).double().exp()[0]  # "7 4" unseen: P2(.|4)
    expected = (2 - d3) / 3 + d3 * 2 / 3 * lower[5]
    assert abs(p[5].item() - expected.item()) < 1e-5


def test_pruned_trigram_keeps_proper_distributions_and_its_frequent_entries():
    """With min_count=2, trigrams seen once fall back to the bigram level, the frequent
    ones keep their full-model probability, and every distribution still sums to one."""
    full = _model()
    sentences_contexts = torch.tensor([[3, 4], [2, 3], [7, 7], [0, 2], [4, 5]])
    pruned = KneserNeyTrigram(V, *_triples(), min_count=2)
    assert len(pruned.keys3) < len(full.keys3)
    probs = pruned.log_probs(sentences_contexts).double().exp()
    assert torch.allclose(probs.sum(1), torch.ones(len(sentences_contexts), dtype=torch.double),
                          atol=1e-5)
    p_full = full.log_probs(torch.tensor([[3, 4]])).double().exp()[0]
    p_pruned = pruned.log_probs(torch.tensor([[3, 4]])).double().exp()[0]
    # c(3 4 5) = 2 is kept: its discounted count over c(3 4 .) is the same in both models.
    assert p_pruned[5] > p_pruned[6]
    assert abs(float(p_full[5] - p_pruned[5])) < 0.1
    # c(3 4 6) = 1 is pruned: its probability is the backoff mass times the lower orders.
    assert p_pruned[6] < p_full[6]


def test_tables_rebuild_the_same_model_and_survive_a_checkpoint(tmp_path):
    """tables() -> torch.save -> torch.load(weights_only=True) -> from_tables gives
    exactly the same distributions, pruned or not."""
    contexts = torch.tensor([[3, 4], [2, 3], [7, 7], [0, 2], [4, 5]])
    for min_count in (1, 2):
        model = KneserNeyTrigram(V, *_triples(), min_count=min_count)
        path = tmp_path / f"tables{min_count}.pt"
        torch.save({"ngram": model.tables()}, path)
        loaded = torch.load(path, weights_only=True)["ngram"]
        rebuilt = KneserNeyTrigram.from_tables(loaded)
        assert rebuilt.entries() == model.entries()
        assert torch.equal(rebuilt.log_probs(contexts), model.log_probs(contexts))


def test_from_tables_refuses_damaged_tables():
    """Tables of another version or with missing parts raise ValueError, not a crash later."""
    tables = _model().tables()
    with pytest.raises(ValueError):
        KneserNeyTrigram.from_tables(dict(tables, version=99))
    broken = dict(tables)
    del broken["bigram"]
    with pytest.raises(ValueError):
        KneserNeyTrigram.from_tables(broken)


def test_mixture_is_a_proper_distribution_between_its_parts():
    """mix_log_probs interpolates probabilities: it sums to one, weight 0 is the network
    alone, and each word's mixed probability lies between its two parts."""
    network = torch.log_softmax(torch.randn(3, V, generator=torch.Generator().manual_seed(1)), -1)
    ngram = _model().probs(torch.tensor([[3, 4], [2, 3], [7, 7]]))
    mixed = mix_log_probs(network, ngram, 0.3)
    assert torch.allclose(mixed.exp().sum(1), torch.ones(3), atol=1e-5)
    assert torch.equal(mix_log_probs(network, ngram, 0.0), network)
    low, high = torch.minimum(network, ngram.log()), torch.maximum(network, ngram.log())
    assert ((mixed >= low - 1e-6) & (mixed <= high + 1e-6)).all()
    expected = torch.log(0.7 * network.exp() + 0.3 * ngram)
    assert torch.allclose(mixed, expected, atol=1e-5)


def test_tables_hold_context_ids_beyond_32_bits():
    """With a 50,000-word vocabulary trigram context ids pass 2**31; they pack and
    unpack exactly."""
    big = 50_000
    contexts = torch.tensor([[big - 1, big - 2], [big - 1, big - 2], [3, 4]])
    targets = torch.tensor([big - 3, big - 3, 5])
    model = KneserNeyTrigram(big, contexts, targets)
    assert int(model.trigram.contexts.max()) > 2**31
    rebuilt = KneserNeyTrigram.from_tables(model.tables())
    assert torch.equal(rebuilt.trigram.contexts, model.trigram.contexts)
    assert torch.equal(rebuilt.log_probs(contexts[:1]), model.log_probs(contexts[:1]))


def _version2(tables: dict) -> dict:
    """The same tables as version 2 wrote them: zlib int64 arrays, words as they are."""
    def v2(values):
        return torch.frombuffer(bytearray(zlib.compress(
            values.numpy().astype("<i8").tobytes())), dtype=torch.uint8)

    def order(packed, restored):
        gaps = torch.diff(restored.contexts, prepend=torch.zeros(1, dtype=torch.long))
        return {"discount": packed["discount"], "contexts": v2(gaps),
                "totals": v2(restored.totals), "lengths": v2(restored.lengths),
                "words": v2(restored.words), "counts": v2(restored.counts)}

    model = KneserNeyTrigram.from_tables(tables)
    return dict(tables, version=2, trigram=order(tables["trigram"], model.trigram),
                bigram=order(tables["bigram"], model.bigram), unigram=v2(model.cont1))


def test_version_3_tables_are_smaller_and_version_2_ones_still_load():
    """Narrow arrays with word gaps give back every array exactly, take less room than
    version 2's zlib int64 arrays (what models shipped before wrote), and those still load."""
    model = KneserNeyTrigram(V, *_triples())
    tables = model.tables()
    assert tables["version"] == 3
    old = _version2(tables)
    contexts = torch.tensor([[3, 4], [2, 3], [7, 7], [0, 2], [4, 5]])
    for packed in (tables, old):
        rebuilt = KneserNeyTrigram.from_tables(packed)
        for name in ("trigram", "bigram"):
            for array in ("contexts", "totals", "lengths", "words", "counts"):
                assert torch.equal(getattr(getattr(rebuilt, name), array),
                                   getattr(getattr(model, name), array)), (name, array)
        assert torch.equal(rebuilt.log_probs(contexts), model.log_probs(contexts))

    def size(packed):
        return sum(len(v["zlib"]) if isinstance(v, dict) else len(v)
                   for order in ("trigram", "bigram") for k, v in packed[order].items()
                   if k != "discount")

    big = KneserNeyTrigram(500, torch.randint(0, 500, (20000, 2), generator=torch.Generator(
        ).manual_seed(0)), torch.randint(0, 500, (20000,), generator=torch.Generator(
        ).manual_seed(1)))
    assert size(big.tables()) < 0.8 * size(_version2(big.tables()))
