"""Tests for the neighbour memory: the network's states over the training text (kNN-LM)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from input_method.checkpoint import export_checkpoint, load_model, load_neighbours, load_ngram
from input_method.config import ExportConfig, ModelConfig, NeighbourSettings
from input_method.errors import CheckpointError
from input_method.metrics import RankingTotals
from input_method.mixture import fit, ranking_key
from input_method.model import NextWordModel
from input_method.neighbours import (
    NeighbourIndex,
    NeighbourMemory,
    first_placed,
    first_words,
    mixed_ranks,
    text_pieces,
    text_states,
)

PAD, START, V = 0, 2, 12
TEXT = np.array([START, 3, 4, 5, 6, START, 3, 4, 5, 7, 8, START, 9, 4, 5, 6, 3, 4, 7, 8, 9])


def network(hidden: int = 8) -> NextWordModel:
    torch.manual_seed(0)
    return NextWordModel(ModelConfig(vocab_size=V, cell="gru", embedding_dim=6,
                                     hidden_size=hidden, softmax="full")).eval()


def settings(**changes) -> NeighbourSettings:
    return dataclasses.replace(NeighbourSettings(weight=0.3, temperature=1.0, k=4, dims=4,
                                                 lists=3, probes=3), **changes)


def test_every_word_is_a_target_once_in_text_order():
    """The pieces score each word after its sentence's <s> once, in order, with at most
    context_size inputs, as training cuts sentences."""
    pieces = list(text_pieces(TEXT, START, PAD, context_size=4))
    targets = [t for _, scored in pieces for t in scored if t != PAD]
    assert targets == [w for w in TEXT.tolist() if w != START]
    assert all(len(inputs) == len(scored) == 4 for inputs, scored in pieces)


def test_states_are_the_networks_own_before_each_word():
    """The state stored for a word is the network's output after the words before it
    (here the whole sentence fits one piece)."""
    model = network()
    states, nexts = text_states(model, TEXT[:5], START, PAD, context_size=8)
    assert nexts.tolist() == [3, 4, 5, 6]
    with torch.inference_mode():
        expected, _ = model.features(torch.tensor([[START, 3, 4, 5]]))
    torch.testing.assert_close(states, expected[0])


@pytest.mark.parametrize("text", [
    TEXT,
    np.array([7, 8, *TEXT.tolist()]),  # words before the first <s> belong to no sentence
    np.array([START, START, 3, 4, START, START, 5, 6, START]),  # empty sentences
], ids=["plain", "leading-words", "empty-sentences"])
def test_the_whole_text_is_written_into_one_tensor_with_what_batches_give(text):
    """The whole text's states, written into one tensor of the counted size, are the
    network's states before each word, batch by batch as it ran them, reduced or not;
    no row is left unfilled (it would hold garbage)."""
    model = network()
    whole, whole_nexts = text_states(model, text, START, PAD, 4, batch_size=2)
    pieces = list(text_pieces(text, START, PAD, 4))
    expected = []
    with torch.inference_mode():
        for batch in (pieces[i:i + 2] for i in range(0, len(pieces), 2)):
            features, _ = model.features(torch.tensor([inputs for inputs, _ in batch]))
            expected.append(features[torch.tensor([targets for _, targets in batch]) != PAD])
    torch.testing.assert_close(whole, torch.cat(expected), rtol=0, atol=0)
    assert whole_nexts.tolist() == [w for w in text[np.argmax(text == START):].tolist()
                                    if w != START]
    reduced, _ = text_states(model, text, START, PAD, 4, batch_size=2,
                             reduce=lambda states: states[:, :3] * 2)
    torch.testing.assert_close(reduced, whole[:, :3] * 2, rtol=0, atol=0)
    with pytest.raises(ValueError):
        text_states(model, np.array([3, 4, START]), START, PAD, 4)  # no word after a <s>


def test_searching_every_list_finds_the_exact_nearest():
    """With every list probed the inverted lists give the exact k nearest keys (by
    squared distance after the PCA), and their next words."""
    generator = torch.Generator().manual_seed(1)
    states = torch.randn(300, 8, generator=generator)
    nexts = torch.randint(3, V, (300,), generator=generator, dtype=torch.int32)
    index = NeighbourIndex.build(states, nexts, settings(dims=8, lists=5))
    queries = torch.randn(6, 8, generator=generator)
    distances, words = index.search(queries, k=4, probes=5)
    keys = (states - index.mean) @ index.projection
    exact = torch.cdist((queries - index.mean) @ index.projection, keys) ** 2
    expected_d, expected_i = torch.topk(exact, 4, largest=False)
    torch.testing.assert_close(distances, expected_d, atol=2e-2, rtol=1e-2)  # float16 keys
    assert torch.equal(words, nexts[expected_i].long())


def test_the_index_round_trips_and_damage_is_a_value_error(tmp_path):
    """to_dict() survives a weights_only save and load; another format is refused."""
    model = network()
    index = NeighbourIndex.build(*text_states(model, TEXT, START, PAD, 4), settings())
    torch.save(index.to_dict(), tmp_path / "i.pt")
    back = NeighbourIndex.from_dict(torch.load(tmp_path / "i.pt", weights_only=True))
    query = torch.randn(2, 8)
    assert all(torch.equal(a, b) for a, b in zip(back.search(query, 4, 3),
                                                 index.search(query, 4, 3), strict=True))
    with pytest.raises(ValueError):
        NeighbourIndex.from_dict(index.to_dict() | {"format": 99})
    with pytest.raises(ValueError):
        NeighbourIndex.from_dict(index.to_dict() | {"nexts": index.nexts[:-1]})


def test_mixing_keeps_a_distribution_and_leaves_rows_without_neighbours():
    """(1 − κ) P + κ P_neighbours sums to one; a row whose votes are all zero (no key
    in its lists) keeps P; κ 0 changes nothing."""
    log_probs = torch.log_softmax(torch.randn(2, V), -1)
    votes = torch.zeros(2, V)
    votes[0, 5] = 1.0
    mixed = NeighbourMemory.mix_probs(log_probs.clone(), votes, 0.25)
    assert torch.allclose(mixed.exp().sum(1), torch.ones(2))
    assert torch.isclose(mixed[0, 5].exp(), 0.75 * log_probs[0, 5].exp() + 0.25)
    assert torch.equal(mixed[1], log_probs[1])
    assert NeighbourMemory.mix_probs(log_probs, votes, 0.0) is log_probs


def test_votes_are_a_distribution_over_the_neighbours_next_words():
    """probs() spreads one unit of vote over the next words of the k nearest states."""
    model = network()
    memory = NeighbourMemory.building(model, TEXT, START, PAD, 4, settings(), V)
    states, nexts = text_states(model, TEXT, START, PAD, 4)
    votes = memory.probs(states[:3])
    assert torch.allclose(votes.sum(1), torch.ones(3))
    assert set(votes.nonzero()[:, 1].tolist()) <= set(nexts.tolist())


def test_a_built_index_is_cached_and_read_back(tmp_path, monkeypatch):
    """The first build writes the cache; the next load of the same network and text
    reads it instead of running the network again."""
    model = network()
    cache = tmp_path / "cache" / "n.pt"
    first = NeighbourMemory.building(model, TEXT, START, PAD, 4, settings(), V, cache).wait()
    assert cache.is_file()

    def refuse(*args, **kwargs):
        raise AssertionError("the network ran again")

    monkeypatch.setattr("input_method.neighbours.text_states", refuse)
    second = NeighbourMemory.building(model, TEXT, START, PAD, 4, settings(), V, cache).wait()
    assert torch.equal(second.keys, first.keys) and torch.equal(second.nexts, first.nexts)


def test_a_failed_build_leaves_the_memory_unused(caplog):
    """A build that fails is logged once; available() says False and nothing raises."""
    memory = NeighbourMemory.building(network(), np.array([START]), START, PAD, 4,
                                      settings(), V)
    while not memory.ready():
        pass
    assert memory.available() is False
    assert memory.available() is False
    assert "could not be built" in caplog.text
    with pytest.raises(ValueError):
        memory.wait()


def test_fingerprint_follows_the_network_text_and_index_settings():
    """Another network, text or index setting names another cache file; κ and T do not."""
    model = network()
    base = NeighbourMemory.fingerprint(model, TEXT, settings())
    assert NeighbourMemory.fingerprint(model, TEXT, settings(weight=0.1, temperature=3)) == base
    assert NeighbourMemory.fingerprint(model, TEXT, settings(dims=3)) != base
    assert NeighbourMemory.fingerprint(model, TEXT[:-1], settings()) != base
    assert NeighbourMemory.fingerprint(network(hidden=9), TEXT, settings()) != base


def test_bad_settings_are_refused():
    """κ outside [0, 1), a temperature of 0 or a zero size are value errors, and so
    are a first suggestion's κ without its T and a bad first κ or T."""
    for changes in ({"weight": 1.0}, {"temperature": 0.0}, {"k": 0}, {"lists": 0},
                    {"first_weight": 0.3}, {"first_temperature": 1.0},
                    {"first_weight": 1.0, "first_temperature": 1.0},
                    {"first_weight": 0.3, "first_temperature": 0.0}):
        with pytest.raises(ValueError):
            settings(**changes)


def test_export_ships_the_settings_and_the_engine_mixes_the_memory(
        tiny_model_dir, processed_dir, tmp_path):
    """fit() with neighbours stores κ and T (not the states); Predictor.load rebuilds
    the index from the phrase memory's text into its cache, and once built the
    suggestions mix it in (they differ from the same engine without it)."""
    from input_method.predict import Predictor

    config = ExportConfig(ngram_min_count=1, data_dir=str(processed_dir), tune_windows=0,
                          ngram_weights=(0.3,), phrase_memory=True, memory_weights=(0.5,),
                          neighbours=True, neighbour_weights=(0.3,),
                          neighbour_temperatures=(1.0,))
    stored = fit(tiny_model_dir, config)
    assert stored is not None and stored["neighbours"]["weight"] == 0.3
    assert stored["neighbours"]["temperature"] > 0
    assert "by_neighbour_setting" in stored["validation"]
    export_checkpoint(tiny_model_dir, tmp_path / "m", stored)

    predictor = Predictor.load(tmp_path / "m", cache_dir=tmp_path / "cache")
    assert predictor.neighbours is not None
    index = predictor.neighbours.wait()
    assert list((tmp_path / "cache").glob("neighbours-*.pt"))
    assert len(index) == len(predictor.ngram.memory.text) - int(
        (predictor.ngram.memory.text == predictor.vocab.start_id).sum())
    with_memory = predictor.next_word_log_probs([predictor.vocab.start_id])
    assert torch.allclose(with_memory.exp().sum(), torch.tensor(1.0), atol=1e-4)
    predictor.neighbours = None
    assert not torch.equal(with_memory, predictor.next_word_log_probs([predictor.vocab.start_id]))


def test_a_session_and_predict_agree_with_the_memory_mixed_in(tiny_model_dir, processed_dir,
                                                             tmp_path):
    """The incremental session gives what the stateless predict gives, neighbours included."""
    from input_method.predict import Predictor

    config = ExportConfig(ngram_min_count=1, data_dir=str(processed_dir), tune_windows=0,
                          ngram_weights=(0.3,), phrase_memory=True, memory_weights=(0.5,),
                          neighbours=True, neighbour_weights=(0.3,),
                          neighbour_temperatures=(1.0,))
    export_checkpoint(tiny_model_dir, tmp_path / "m", fit(tiny_model_dir, config))
    predictor = Predictor.load(tmp_path / "m")
    predictor.wait_until_ready()
    assert predictor.neighbours.ready() and predictor._neighbours_ready()
    session = predictor.session()
    for prefix in ("今天", "今天天气", "我们"):
        assert [w for w, _ in session.predict(prefix, 5)] == [
            w for w, _ in predictor.predict(prefix, 5)]


def test_neighbours_without_a_phrase_memory_are_refused(tiny_model_dir, processed_dir):
    """Exporting neighbours needs the phrase memory; a checkpoint whose neighbour
    settings are damaged or lack the memory fails to load with a CheckpointError."""
    with pytest.raises(CheckpointError, match="phrase-memory"):
        fit(tiny_model_dir, ExportConfig(ngram_min_count=1, data_dir=str(processed_dir),
                                         neighbours=True))
    model, _, payload = load_model(tiny_model_dir)
    assert load_neighbours(payload, model, None) is None
    with pytest.raises(CheckpointError, match="no phrase memory"):
        load_neighbours({"ngram": {"neighbours": {}}}, model, None)
    config = ExportConfig(ngram_min_count=1, data_dir=str(processed_dir), tune_windows=0,
                          ngram_weights=(0.3,), phrase_memory=True, memory_weights=(0.5,))
    payload["ngram"] = fit(tiny_model_dir, config)
    ngram, _ = load_ngram(payload)
    payload["ngram"]["neighbours"] = {"weight": 2.0, "temperature": 1.0}
    with pytest.raises(CheckpointError, match="damaged"):
        load_neighbours(payload, model, ngram)


def test_identical_states_leave_no_empty_list_to_probe():
    """Many identical states (every sentence starts from the same one) are thinned to k
    copies; centroids drawn to one point leave empty lists, which are dropped, so a
    query there finds votes."""
    generator = torch.Generator().manual_seed(2)
    states = torch.cat([torch.ones(150, 8), torch.randn(50, 8, generator=generator)])
    nexts = torch.full((200,), 5, dtype=torch.int32)
    index = NeighbourIndex.build(states, nexts, settings(dims=8, lists=40))
    assert len(index) == 50 + 4  # the 150 identical ones thinned to k copies
    assert (index.offsets[1:] > index.offsets[:-1]).all()
    distances, words = index.search(torch.ones(1, 8), k=4, probes=2)
    assert torch.isfinite(distances).all() and words.tolist() == [[5, 5, 5, 5]]


def test_the_build_runs_on_a_daemon_thread(monkeypatch):
    """A process that never waits for the index (ime learn) can exit while it builds:
    the worker is a daemon thread, and ready() says False until it ends."""
    import threading

    release = threading.Event()

    def slow(*args, **kwargs):
        release.wait(10)
        raise ValueError("stopped")

    monkeypatch.setattr(NeighbourIndex, "from_text", slow)
    memory = NeighbourMemory.building(network(), TEXT, START, PAD, 4, settings(), V)
    workers = [t for t in threading.enumerate() if t.name == "neighbours"]
    assert workers and all(t.daemon for t in workers)
    assert not memory.ready() and not memory.available()
    release.set()
    with pytest.raises(ValueError, match="stopped"):
        memory.wait()


def test_identical_keys_beyond_k_are_thinned_evenly_and_the_rest_kept():
    """A set of identical keys keeps k copies spread evenly through the text (their next
    words sample the whole set); distinct keys all stay, in text order."""
    from input_method.neighbours import _thin_duplicates

    keys = torch.cat([torch.zeros(12, 3), torch.arange(1.0, 10.0).repeat(3, 1).T])
    keys = keys[torch.randperm(21, generator=torch.Generator().manual_seed(3))]
    nexts = torch.arange(21, dtype=torch.int32)
    thin_keys, thin_nexts = _thin_duplicates(keys, nexts, keep=4)
    zero_rows = nexts[(keys == 0).all(1)]
    assert len(thin_keys) == 9 + 4  # the rows 1..9 are distinct, the 12 zeros thinned to 4
    kept_zero = thin_nexts[(thin_keys == 0).all(1)]
    assert kept_zero.tolist() == zero_rows[[0, 3, 6, 9]].tolist()
    assert thin_nexts.tolist() == sorted(thin_nexts.tolist())
    same_keys, same_nexts = _thin_duplicates(keys, nexts, keep=13)
    assert torch.equal(same_keys, keys) and torch.equal(same_nexts, nexts)


def test_thinning_does_not_depend_on_which_rows_share_a_hash(monkeypatch):
    """Only rows whose hash is crowded are grouped exactly; when every row shares one hash
    (unequal rows included), the same rows are kept as with the real hashes."""
    import input_method.neighbours as neighbours

    generator = torch.Generator().manual_seed(5)
    keys = torch.cat([torch.zeros(30, 6), torch.ones(7, 6), torch.randn(40, 6, generator=generator),
                      torch.full((25, 6), -2.0)])
    keys = keys[torch.randperm(len(keys), generator=generator)]
    nexts = torch.arange(len(keys), dtype=torch.int32)
    equal = torch.tensor([[1, 2, 3], [1, 2, 3], [3, 2, 1]], dtype=torch.int16)
    hashes = neighbours._row_hashes(equal)
    assert hashes[0] == hashes[1] != hashes[2]
    real_keys, real_nexts = neighbours._thin_duplicates(keys, nexts, keep=8)
    assert len(real_keys) == 40 + 7 + 8 + 8  # distinct rows, a set under k, two sets thinned
    monkeypatch.setattr(neighbours, "_row_hashes", lambda rows: torch.zeros(len(rows),
                                                                             dtype=torch.long))
    one_keys, one_nexts = neighbours._thin_duplicates(keys, nexts, keep=8)
    assert torch.equal(one_keys, real_keys) and torch.equal(one_nexts, real_nexts)


def test_the_covariance_is_torch_cov_bit_for_bit_without_its_copy():
    """_covariance centres its input in place and otherwise computes what torch.cov does,
    to the last bit (the shipped index was built with torch.cov)."""
    from input_method.neighbours import _covariance

    generator = torch.Generator().manual_seed(7)
    sample = torch.randn(3000, 40, generator=generator) * 3 + 1  # (observations, variables)
    sample -= sample.mean(0)  # as _principal hands it over: centred once already
    expected = torch.cov(sample.T)
    variables = sample.T.clone()
    assert torch.equal(_covariance(variables), expected)
    assert torch.equal(variables, sample.T - sample.T.sum(1, keepdim=True) / 3000)


def test_the_default_cache_is_under_xdg_cache_home(monkeypatch, tmp_path):
    """default_cache_dir() follows $XDG_CACHE_HOME, and ~/.cache without it."""
    from pathlib import Path

    from input_method.neighbours import default_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "input_method"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "input_method"


def test_mixing_one_word_per_row_agrees_with_mixing_whole_rows():
    """mix_targets() gives each target the probability mix() gives it in the full row."""
    model = network()
    memory = NeighbourMemory.building(model, TEXT, START, PAD, 4, settings(), V)
    states, _ = text_states(model, TEXT, START, PAD, 4)
    log_probs = torch.log_softmax(torch.randn(len(states), V), -1)
    targets = torch.randint(0, V, (len(states),))
    rows = memory.mix(log_probs, states).exp().gather(1, targets[:, None])[:, 0]
    one = memory.mix_targets(log_probs.exp().gather(1, targets[:, None])[:, 0], states, targets)
    torch.testing.assert_close(one, rows)


def test_mixed_ranks_agree_with_mixing_the_whole_vocabulary():
    """The export's sparse ranking (only the voted words re-ranked) gives the same rank
    to every target as mixing every word and ranking them, and the same losses: rows
    without neighbours, repeated votes for one word, voted specials, targets voted for
    or not, and special targets included."""
    generator = torch.Generator().manual_seed(3)
    batch, vocab_size, k, special = 2000, 50, 8, [0, 1, 2]
    probs = torch.softmax(torch.randn(batch, vocab_size, generator=generator) * 2, 1)
    words = torch.randint(0, 30, (batch, k), generator=generator)  # repeats and specials
    votes = torch.softmax(torch.randn(batch, k, generator=generator), 1)
    votes[:50] = 0.0  # no neighbour found for these rows
    neighbours = torch.zeros_like(probs).scatter_add_(1, words, votes)
    targets = torch.randint(0, 30, (batch,), generator=generator)
    ranked = probs.clone()
    ranked[:, special] = -1.0
    ranked = ranked.sort(1).values
    suggestable = ~torch.isin(targets, torch.tensor(special))
    for weight in (0.0, 0.3, 0.35, 0.6):
        mixed = NeighbourMemory.mix_probs(probs.log(), neighbours, weight)
        scored = mixed.clone()
        scored[:, special] = -float("inf")
        expected = (scored > scored.gather(1, targets[:, None])).sum(1) + 1
        target_lp, rank = mixed_ranks(probs, ranked, neighbours, words, weight, targets, special)
        assert torch.equal(rank[suggestable], expected[suggestable])
        assert torch.allclose(target_lp, mixed.gather(1, targets[:, None])[:, 0], atol=1e-5)
        full, sparse = RankingTotals(), RankingTotals()
        full.add(mixed, targets, special)
        sparse.add_ranks(target_lp, rank, targets, special)
        assert sparse.hits == full.hits


def test_first_words_and_places_agree_with_mixing_the_whole_vocabulary():
    """first_words() picks the best suggestable word of the full mixture (rows without
    neighbours, voted specials included), and first_placed() gives every target the
    rank RankingTotals gives it with that word put first."""
    generator = torch.Generator().manual_seed(5)
    batch, vocab_size, k, special = 2000, 50, 8, [0, 1, 2]
    probs = torch.softmax(torch.randn(batch, vocab_size, generator=generator) * 2, 1)
    words = torch.randint(0, 30, (batch, k), generator=generator)
    votes = torch.softmax(torch.randn(batch, k, generator=generator) * 3, 1)
    votes[:50] = 0.0
    neighbours = torch.zeros_like(probs).scatter_add_(1, words, votes)
    targets = torch.randint(0, 30, (batch,), generator=generator)
    suggestable = probs.clone()
    suggestable[:, special] = -1.0
    ranked, best = suggestable.sort(1).values, suggestable.argmax(1)
    rest_weight = 0.2
    rest = NeighbourMemory.mix_probs(probs.log(), neighbours, rest_weight)
    _, rank = mixed_ranks(probs, ranked, neighbours, words, rest_weight, targets, special)
    moved = 0
    for weight in (0.0, 0.4, 0.7):
        mixed = NeighbourMemory.mix_probs(probs.log(), neighbours, weight)
        scored = mixed.clone()
        scored[:, special] = -float("inf")
        first = first_words(probs, best, neighbours, words, weight, special)
        assert torch.equal(first, scored.argmax(1))
        _, first_rank = mixed_ranks(probs, ranked, neighbours, words, rest_weight, first,
                                    special)
        placed = first_placed(rank, first_rank, first, targets)
        full, sparse = RankingTotals(), RankingTotals()
        full.add(rest, targets, special, first=mixed)
        sparse.add_ranks(rest.gather(1, targets[:, None])[:, 0], placed, targets, special)
        assert sparse.hits == full.hits
        assert math.isclose(sparse.reciprocal_rank, full.reciprocal_rank, rel_tol=1e-6)
        moved += int((placed != rank).sum())
    assert moved > 0  # the first words differed from the rest's in some rows


def test_mix_first_serves_the_mixture_and_ranks_the_first_word_by_its_own():
    """mix_first() returns what mix() serves and, with a first κ and T, the mixture at
    those, bit for bit; without them, None."""
    model = network()
    states, _ = text_states(model, TEXT, START, PAD, 4)
    log_probs = torch.log_softmax(torch.randn(len(states), V), -1)
    plain = NeighbourMemory.building(model, TEXT, START, PAD, 4, settings(), V)
    served, first = plain.mix_first(log_probs, states)
    assert first is None and torch.equal(served, plain.mix(log_probs, states))
    apart = NeighbourMemory(plain.wait(), settings(first_weight=0.6, first_temperature=0.5), V)
    sharper = NeighbourMemory(plain.wait(), settings(weight=0.6, temperature=0.5), V)
    served, first = apart.mix_first(log_probs, states)
    assert torch.equal(served, plain.mix(log_probs, states))  # bit for bit
    assert torch.equal(first, sharper.mix(log_probs, states))

    class NoneForRowZero:  # the index, but row 0's probed lists held no key
        def search(self, queries, k, probes):
            distances, words = plain.wait().search(queries, k, probes)
            distances[0] = float("inf")
            return distances, words

    served, first = NeighbourMemory(NoneForRowZero(), apart.settings, V).mix_first(log_probs,
                                                                                   states)
    assert torch.equal(served[0], log_probs[0]) and torch.equal(first[0], log_probs[0])
    assert torch.equal(served[1:], plain.mix(log_probs, states)[1:])


def test_export_ranks_the_first_word_apart_when_validation_prefers_it(
        tiny_model_dir, processed_dir, tmp_path):
    """fit() scores every (T, κ) of the grid as the first word's ranking with the chosen
    one ranking the rest, and stores it only when it ranks better than the rest's own;
    the engine then leads with that mixture's best word, a session and predict agree,
    and the probabilities shown stay the served mixture's."""
    from input_method.predict import Predictor

    config = ExportConfig(ngram_min_count=1, data_dir=str(processed_dir), tune_windows=0,
                          ngram_weights=(0.3,), phrase_memory=True, memory_weights=(0.5,),
                          neighbours=True, neighbour_weights=(0.1, 0.5, 0.9),
                          neighbour_temperatures=(0.2, 5.0))
    stored = fit(tiny_model_dir, config)
    table = stored["validation"]["by_neighbour_setting"]
    firsts = [key for key in table if key.startswith("first ")]
    assert len(firsts) == 6
    chosen = stored["neighbours"]
    rest = table[f"first T {chosen['temperature']} κ {chosen['weight']}"]
    if chosen.get("first_weight") is None:
        assert all(sum(ranking_key(table[key] | {"loss": 0.0})) <=
                   sum(ranking_key(rest | {"loss": 0.0})) for key in firsts)
        # make one for the engine's part of the test
        chosen = stored["neighbours"] = chosen | {"first_weight": 0.9, "first_temperature": 0.1}
    else:
        best = table[f"first T {chosen['first_temperature']} κ {chosen['first_weight']}"]
        assert best["hit@1"] + best["hit@5"] > rest["hit@1"] + rest["hit@5"]
    export_checkpoint(tiny_model_dir, tmp_path / "m", stored)
    predictor = Predictor.load(tmp_path / "m")
    predictor.wait_until_ready()
    session = predictor.session()
    for prefix in ("今天", "今天天气", "我们", "我"):
        context = predictor.context_ids(prefix)
        served, first = predictor._next_word_rankings(context, None, first=True)
        assert first is not None
        assert torch.equal(served, predictor.next_word_log_probs(context))
        shown = predictor.predict(prefix, 5)
        first = first.clone()
        first[predictor._never] = -math.inf
        assert shown[0][0] == predictor.vocab.itos[int(first.argmax())]
        assert all(p == pytest.approx(served[predictor.vocab.stoi[w]].exp().item(), rel=1e-5)
                   for w, p in shown)
        assert session.predict(prefix, 5) == shown


def test_export_without_the_first_word_ranks_it_like_the_rest(tiny_model_dir, processed_dir):
    """``first_word=False`` (``ime export --no-first-word``) skips the first word's grid:
    no first κ or T is stored and the table has no first-word rows."""
    config = ExportConfig(ngram_min_count=1, data_dir=str(processed_dir), tune_windows=0,
                          ngram_weights=(0.3,), phrase_memory=True, memory_weights=(0.5,),
                          neighbours=True, neighbour_weights=(0.1, 0.5, 0.9),
                          neighbour_temperatures=(0.2, 5.0), first_word=False)
    stored = fit(tiny_model_dir, config)
    assert stored["neighbours"]["first_weight"] is None
    assert not [key for key in stored["validation"]["by_neighbour_setting"]
                if key.startswith("first ")]
