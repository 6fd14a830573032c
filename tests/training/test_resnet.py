"""ResNet backbones (structure and init as torchvision's) and SplitBatchNorm against per-split BatchNorm."""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from training.resnet import SplitBatchNorm, build_resnet

# torchvision's parameter counts (11,689,512 and 25,557,032) less the 1000-class fc layer.
PARAMS = {"resnet18": 11_689_512 - (512 * 1000 + 1000), "resnet50": 25_557_032 - (2048 * 1000 + 1000)}

@pytest.mark.parametrize(("arch", "out_dim"), [("resnet18", 512), ("resnet50", 2048)])
def test_structure_and_output(arch, out_dim):
    net = build_resnet(arch)
    assert net.out_dim == out_dim
    assert sum(p.numel() for p in net.parameters()) == PARAMS[arch]
    assert not hasattr(net, "fc")
    y = net(torch.randn(2, 3, 64, 64))
    assert y.shape == (2, out_dim) and torch.isfinite(y).all()


def test_torchvision_layer_names():
    keys = set(build_resnet("resnet18").state_dict()) | set(build_resnet("resnet50").state_dict())
    for name in (
        "conv1.weight",
        "bn1.running_mean",
        "layer1.0.conv1.weight",
        "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.running_var",
        "layer4.1.bn2.weight",
        "layer4.2.conv3.weight",  # resnet50's Bottleneck
        "layer1.0.downsample.1.weight",  # resnet50: 64 -> 256 channels in the first block
    ):
        assert name in keys, name


def test_unknown_arch_lists_choices():
    with pytest.raises(ValueError, match="resnet18, resnet18-cifar, resnet18-cifar-half, resnet18-cifar-quarter, resnet50"):
        build_resnet("resnet34")


def test_cli_lists_every_architecture():
    from ess import train as cli
    from training.resnet import ARCHS

    assert set(cli.ARCHS) == set(ARCHS)


@pytest.mark.parametrize(("arch", "out_dim", "layer1_side"), [("resnet18-cifar", 512, 32), ("resnet18-cifar-half", 256, 32),
                                                          ("resnet18-cifar-quarter", 128, 32)])
def test_cifar_stem_keeps_resolution(arch, out_dim, layer1_side):
    net = build_resnet(arch).eval()
    assert net.out_dim == out_dim
    x = torch.randn(2, 3, 32, 32)
    stem = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    assert stem.shape[-1] == layer1_side and net.layer1(stem).shape[1] == out_dim // 8
    assert net(x).shape == (2, out_dim)
    # the half-width network has a quarter of the 3x3 weights of the full one (to the stem's 3 input channels)
    full = sum(p.numel() for p in build_resnet("resnet18-cifar").parameters())
    half = sum(p.numel() for p in build_resnet("resnet18-cifar-half").parameters())
    assert 0.24 < half / full < 0.26


def test_kaiming_init_and_generator():
    net = build_resnet("resnet18", generator=torch.Generator().manual_seed(0))
    w = net.layer4[1].conv2.weight  # fan_out = 512 * 3 * 3
    assert abs(w.std().item() / (2 / (512 * 9)) ** 0.5 - 1) < 0.05
    assert torch.all(net.bn1.weight == 1) and torch.all(net.bn1.bias == 0)
    again = build_resnet("resnet18", generator=torch.Generator().manual_seed(0))
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_zero_init_residual():
    r18 = build_resnet("resnet18", zero_init_residual=True)
    assert all(torch.all(b.bn2.weight == 0) for layer in (r18.layer1, r18.layer4) for b in layer)
    r50 = build_resnet("resnet50", zero_init_residual=True)
    assert all(torch.all(b.bn3.weight == 0) for b in r50.layer3)
    assert torch.all(r50.layer3[0].bn2.weight == 1)


def _reference_split_bn(x: torch.Tensor, splits: int, bn: nn.BatchNorm2d) -> torch.Tensor:
    """Slow reference: plain training-mode BatchNorm on each split (samples s, s+S, ...) separately."""
    out = torch.empty_like(x)
    for s in range(splits):
        out[s::splits] = F.batch_norm(x[s::splits], None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
    return out


def test_split_batchnorm_training_matches_per_split_reference():
    torch.manual_seed(0)
    bn = SplitBatchNorm(5, num_splits=4)
    nn.init.normal_(bn.weight)
    nn.init.normal_(bn.bias)
    x = torch.randn(8, 5, 3, 3) * 3 + torch.arange(8.0).view(8, 1, 1, 1)
    y = bn(x)
    torch.testing.assert_close(y, _reference_split_bn(x, 4, bn), rtol=1e-5, atol=1e-5)
    # Running statistics: the average over splits of each split's momentum update.
    means = torch.stack([x[s::4].mean((0, 2, 3)) for s in range(4)])  # (S, C)
    vars_ = torch.stack([x[s::4].var((0, 2, 3), unbiased=True) for s in range(4)])
    torch.testing.assert_close(bn.running_mean, (0.1 * means).mean(0))
    torch.testing.assert_close(bn.running_var, (0.9 + 0.1 * vars_).mean(0))
    assert int(bn.num_batches_tracked) == 1


def test_split_batchnorm_eval_uses_running_stats():
    bn = SplitBatchNorm(3, num_splits=2)
    plain = nn.BatchNorm2d(3)
    x = torch.randn(4, 3, 2, 2)
    bn(x)
    plain.load_state_dict(bn.state_dict())
    bn.eval(), plain.eval()
    z = torch.randn(3, 3, 2, 2)  # any batch size in eval
    torch.testing.assert_close(bn(z), plain(z))


def test_split_batchnorm_one_split_is_batchnorm_and_bad_batch_raises():
    x = torch.randn(6, 3, 2, 2)
    torch.testing.assert_close(SplitBatchNorm(3, num_splits=1)(x), nn.BatchNorm2d(3)(x))
    with pytest.raises(ValueError, match="divisible"):
        SplitBatchNorm(3, num_splits=4)(x)
    with pytest.raises(ValueError, match="num_splits"):
        SplitBatchNorm(3, num_splits=0)


def test_resnet_with_split_batchnorm_trains():
    net = build_resnet("resnet18", norm_layer=partial(SplitBatchNorm, num_splits=2))
    assert isinstance(net.layer1[0].bn1, SplitBatchNorm)
    net(torch.randn(4, 3, 32, 32)).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize(("arch", "sides"), [("resnet18", (8, 4, 2)), ("resnet18-cifar-quarter", (16, 8, 4))])
def test_forward_maps_returns_forwards_output_and_the_layer_maps(arch, sides):
    """forward_maps' pooled vector is forward's, bit for bit, in training (batch statistics) and eval mode;
    its layer4 map pooled is that vector, and each map has the stage's width and stride."""
    x = torch.randn(4, 3, 32 if "cifar" in arch else 64, 32 if "cifar" in arch else 64,
                    generator=torch.Generator().manual_seed(0))
    for train in (True, False):
        torch.manual_seed(1)
        net = build_resnet(arch, norm_layer=partial(SplitBatchNorm, num_splits=2)).train(train)
        ref = net(x)
        pooled, maps = net.forward_maps(x)
        assert torch.equal(pooled, ref)
        assert list(maps) == ["layer2", "layer3", "layer4"]
        w = net.out_dim // 8
        for (name, m), c, side in zip(maps.items(), (2 * w, 4 * w, 8 * w), sides):
            assert m.shape == (4, c, side, side), name
        torch.testing.assert_close(maps["layer4"].mean((2, 3)), pooled)
