import torch

from cerberus_core.model.batching import epoch_batches, padding_share


def lengths(n=1000, seed=0):
    return torch.randint(9, 129, (n,), generator=torch.Generator().manual_seed(seed))


def test_plain_batches_are_the_seeded_permutation_cut_in_order():
    lens = lengths(100)
    order = torch.randperm(100, generator=torch.Generator().manual_seed(3 * 1000 + 2))
    batches = epoch_batches(lens, 32, seed=3, epoch=2)
    assert [len(b) for b in batches] == [32, 32, 32, 4]
    assert torch.equal(torch.cat(batches), order)  # the order runs made before grouping existed


def test_grouped_batches_cover_every_pair_once_with_less_padding():
    lens = lengths()
    plain = epoch_batches(lens, 32, seed=0, epoch=0)
    grouped = epoch_batches(lens, 32, seed=0, epoch=0, pool_batches=8)
    assert sorted(torch.cat(grouped).tolist()) == list(range(len(lens)))
    assert [len(b) for b in grouped] == [len(b) for b in plain]  # same steps; the short batch stays last
    assert padding_share(lens, grouped) < padding_share(lens, plain) / 3
    assert all(lens[b].max() - lens[b].min() <= 40 for b in grouped[:-1])


def test_grouped_order_is_random_and_seeded():
    lens = lengths()
    a = epoch_batches(lens, 32, seed=0, epoch=0, pool_batches=8)
    assert all(torch.equal(x, y) for x, y in zip(a, epoch_batches(lens, 32, seed=0, epoch=0, pool_batches=8)))
    other = epoch_batches(lens, 32, seed=0, epoch=1, pool_batches=8)
    assert not all(torch.equal(x, y) for x, y in zip(a, other))
    longest = [int(lens[b].max()) for b in a[:-1]]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)  # batches are shuffled
