"""name_map.py: PaddleClas ResNeSt parameter names <-> official ResNeSt / timm names (spec section 5d).

The mapping is a rule, not a table, so it covers any number of stages and blocks (the full models and the
tiny test variants alike):

  stem.conv1._conv / ._batch_norm                  conv1.0 / conv1.1
  stem.conv2._conv / ._batch_norm                  conv1.3 / conv1.4
  stem.conv3._conv / ._batch_norm                  conv1.6 / bn1
  layer{L}.layer{L}_bottleneck_{i}.<sub>           layer{L}.{i}.<sub'>, with <sub> -> <sub'>:
      conv1._conv / conv1._batch_norm              conv1 / bn1
      conv2.conv1._conv / ._batch_norm             conv2.conv / conv2.bn0      (radix conv)
      conv2.conv2._conv / ._batch_norm             conv2.fc1 / conv2.bn1       (fc1 has no bias in Paddle)
      conv2.conv3                                  conv2.fc2                   (weight and bias)
      conv3._conv / conv3._batch_norm              conv3 / bn3
      conv4 / _batch_norm                          downsample.1 / downsample.2 (block 0's shortcut)
  out.weight / out.bias                            fc.weight (transposed: Paddle stores [in, out]) / fc.bias
  BN leaves: weight, bias, _mean, _variance        weight, bias, running_mean, running_var

PaddleClas releases before late 2020 accumulated block names (layer1_bottleneck_1_bottleneck_2); the last
number is the block index, so those names map too.

  paddle_to_official("layer2.layer2_bottleneck_0.conv4.weight")  -> ("layer2.0.downsample.1.weight", False)
  official_to_paddle("fc.weight")                                -> ("out.weight", True)
Both return None for a name outside the scheme (and official_to_paddle for fc1.bias, which Paddle lacks).
"""
import re

STEM = {"stem.conv1._conv": "conv1.0", "stem.conv1._batch_norm": "conv1.1",
        "stem.conv2._conv": "conv1.3", "stem.conv2._batch_norm": "conv1.4",
        "stem.conv3._conv": "conv1.6", "stem.conv3._batch_norm": "bn1"}
BLOCK = {"conv1._conv": "conv1", "conv1._batch_norm": "bn1",
         "conv2.conv1._conv": "conv2.conv", "conv2.conv1._batch_norm": "conv2.bn0",
         "conv2.conv2._conv": "conv2.fc1", "conv2.conv2._batch_norm": "conv2.bn1",
         "conv2.conv3": "conv2.fc2", "conv3._conv": "conv3", "conv3._batch_norm": "bn3",
         "conv4": "downsample.1", "_batch_norm": "downsample.2"}
BN_LEAVES = {"weight": "weight", "bias": "bias", "_mean": "running_mean", "_variance": "running_var"}
CONV_LEAVES = {"weight": "weight"}
CONV_BIAS_LEAVES = {"weight": "weight", "bias": "bias"}  # fc2 and the classifier

PADDLE_BLOCK = re.compile(r"^layer(\d+)\.layer\1((?:_bottleneck_\d+)+)\.(.+)$")
OFFICIAL_BLOCK = re.compile(r"^layer(\d+)\.(\d+)\.(.+)$")


def _leaves(paddle_module):
    if paddle_module.endswith("_batch_norm"):
        return BN_LEAVES
    if paddle_module == "conv2.conv3":
        return CONV_BIAS_LEAVES
    return CONV_LEAVES


def paddle_to_official(name):
    """(official name, needs transpose) for a PaddleClas structured name, or None."""
    if name in ("out.weight", "out.bias"):
        return ("fc." + name[4:], name == "out.weight")
    module, _, leaf = name.rpartition(".")
    if module in STEM:
        official = STEM[module]
        leaves = _leaves(module)
    else:
        m = PADDLE_BLOCK.match(module + ".")  # the trailing dot lets a one-part module (conv4) match
        if m is None:
            return None
        layer, blocks, sub = m.group(1), m.group(2), m.group(3)[:-1]
        if sub not in BLOCK:
            return None
        index = blocks.rsplit("_", 1)[1]
        official = "layer%s.%d.%s" % (layer, int(index), BLOCK[sub])
        leaves = _leaves(sub)
    if leaf not in leaves:
        return None
    return (official + "." + leaves[leaf], False)


_OFFICIAL_STEM = {v: k for k, v in STEM.items()}
_OFFICIAL_BLOCK = {v: k for k, v in BLOCK.items()}


def official_to_paddle(name):
    """(PaddleClas structured name, needs transpose) for an official/timm name, or None."""
    if name in ("fc.weight", "fc.bias"):
        return ("out." + name[3:], name == "fc.weight")
    module, _, leaf = name.rpartition(".")
    if module in _OFFICIAL_STEM:
        paddle_module = _OFFICIAL_STEM[module]
        prefix = ""
    else:
        m = OFFICIAL_BLOCK.match(module)
        if m is None or m.group(3) not in _OFFICIAL_BLOCK:
            return None
        paddle_module = _OFFICIAL_BLOCK[m.group(3)]
        prefix = "layer%s.layer%s_bottleneck_%s." % (m.group(1), m.group(1), m.group(2))
    inverse = {v: k for k, v in _leaves(paddle_module).items()}
    if leaf not in inverse:
        return None
    return (prefix + paddle_module + "." + inverse[leaf], False)
