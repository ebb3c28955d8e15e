"""save_pretrained / from_pretrained on every model class users keep: identical outputs after the round
trip, a folder and a single file both load, the same bytes when saved twice, and a clear error for a
model of another kind."""

import pytest
import torch

from genlab.flows.networks import DiT, FlowNetConfig, UNetVelocity, VelocityMLP, VelocityNet, build_velocity_net, load_velocity_net
from genlab.gans import Critic, Generator, NetworkConfig, build_critic, build_generator, load_generator
from genlab.io import save_weights, sha256_file
from genlab.lm import LMConfig, StreamLM
from genlab.metrics import DigitsClassifier
from genlab.tokenizers import ImageTokenizer, TokenizerConfig, build_tokenizer


def _images():
    return torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1


def _lm_call(m):
    tokens = torch.randint(0, m.vocab.size, (2, 5), generator=torch.Generator().manual_seed(0))
    positions = torch.arange(5).expand(2, 2, 5)
    return m(tokens, positions)


def _flow_call(m):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, *m.data_shape, generator=g)
    labels = torch.tensor([0, 1]) if m.num_classes else None
    return m(x, torch.rand(2, generator=g), labels)


GAN_IMAGES = dict(data_shape=[1, 8, 8], latent_dim=4, width=4)
CASES = {
    "fsq_tokenizer": (ImageTokenizer, lambda: build_tokenizer(TokenizerConfig(image_channels=1, image_size=8, channels=8, levels=[3, 3])),
                      lambda m: m(_images()).reconstruction),
    "vq_tokenizer": (ImageTokenizer, lambda: build_tokenizer(TokenizerConfig(image_channels=1, image_size=8, channels=8, quantizer="vq",
                                                                             quantizer_options={"codebook_size": 16, "dim": 4})),
                     lambda m: m.decode(m.encode(_images()))),
    "velocity_mlp": (VelocityMLP, lambda: VelocityMLP(2, 16, 2, num_classes=3), _flow_call),
    "velocity_unet": (UNetVelocity, lambda: build_velocity_net(FlowNetConfig(net="unet", width=32, channel_mult=[1, 1]), (1, 8, 8)), _flow_call),
    "velocity_dit": (DiT, lambda: DiT(8, 1, 2, 16, 1, 2, num_classes=2), _flow_call),
    "mlp_generator": (Generator, lambda: build_generator(NetworkConfig(width=8, depth=2)), lambda m: m(torch.ones(3, 2))),
    "dcgan_generator": (Generator, lambda: build_generator(NetworkConfig(arch="dcgan", **GAN_IMAGES)), lambda m: m(torch.ones(3, 4))),
    "resnet_generator": (Generator, lambda: build_generator(NetworkConfig(arch="resnet", **GAN_IMAGES)), lambda m: m(torch.ones(3, 4))),
    "mlp_critic": (Critic, lambda: build_critic(NetworkConfig(width=8, depth=2)), lambda m: m(torch.ones(3, 2))),
    "dcgan_critic": (Critic, lambda: build_critic(NetworkConfig(arch="dcgan", **GAN_IMAGES)), lambda m: m(torch.ones(3, 1, 8, 8))),
    "resnet_critic": (Critic, lambda: build_critic(NetworkConfig(arch="resnet", **GAN_IMAGES)), lambda m: m(torch.ones(3, 1, 8, 8))),
    "stream_lm": (StreamLM, lambda: StreamLM(LMConfig(image_codebook_size=9, image_grid=[2, 2], dim=16, depth=1, heads=2, context=16)),
                  _lm_call),
    "digits_classifier": (DigitsClassifier, lambda: DigitsClassifier(width=4, feature_dim=8), lambda m: m(torch.zeros(2, 1, 8, 8))),
}


@pytest.mark.parametrize("name", list(CASES))
def test_round_trip_gives_identical_outputs(tmp_path, name):
    cls, build, call = CASES[name]
    torch.manual_seed(0)
    model = build().eval()
    with torch.no_grad():
        for p in model.parameters():  # away from the initialisation (zero-init layers included)
            p.add_(0.01 * torch.randn_like(p))
    folder = model.save_pretrained(tmp_path / "a")
    assert sorted(f.name for f in folder.iterdir()) == ["config.json", "model.safetensors"]
    model.save_pretrained(tmp_path / "b")
    assert sha256_file(tmp_path / "a" / "model.safetensors") == sha256_file(tmp_path / "b" / "model.safetensors")
    torch.manual_seed(1)
    with torch.no_grad():
        expected = call(model)
        for path in (folder, folder / "model.safetensors"):
            loaded = cls.from_pretrained(path)
            assert type(loaded) is type(model) and not loaded.training
            assert torch.equal(call(loaded), expected)


def test_a_model_of_another_kind_is_a_clear_error(tmp_path):
    build_generator(NetworkConfig(width=8, depth=1)).save_pretrained(tmp_path / "g")
    with pytest.raises(ValueError, match=r"holds a 'GANGenerator', not an 'ImageTokenizer'"):
        ImageTokenizer.from_pretrained(tmp_path / "g")
    with pytest.raises(ValueError, match=r"holds a 'GANGenerator', not a 'GANCritic'"):
        Critic.from_pretrained(tmp_path / "g" / "model.safetensors")
    VelocityMLP(2, 8, 1).save_pretrained(tmp_path / "mlp")
    with pytest.raises(ValueError, match="holds a VelocityMLP, not a DiT"):
        DiT.from_pretrained(tmp_path / "mlp")
    assert isinstance(VelocityNet.from_pretrained(tmp_path / "mlp"), VelocityMLP)


def test_weights_files_written_by_the_training_scripts_keep_loading(tmp_path):
    """The single-file layout of train_flow.py / train_gan.py (config with extra keys) loads through the same path."""
    cfg = NetworkConfig(width=8, depth=1)
    generator = build_generator(cfg)
    extra = {"width": 8, "depth": 1, "arch": "mlp", "data_shape": [2], "latent_dim": 2, "activation": "leaky_relu",
             "dataset": "toy2d", "objective": "wgan_gp"}
    save_weights(generator, tmp_path / "generator.safetensors", "GANGenerator", extra)
    loaded, config = load_generator(str(tmp_path / "generator.safetensors"))
    assert config["dataset"] == "toy2d" and torch.equal(loaded(torch.ones(1, 2)), generator.eval()(torch.ones(1, 2)))
    net = VelocityMLP(2, 8, 1)
    from genlab.flows.networks import velocity_net_metadata
    save_weights(net, tmp_path / "flow.safetensors", "FlowVelocityNet",
                 velocity_net_metadata(FlowNetConfig(net="mlp", width=8, depth=1), (2,), 0))
    x, t = torch.ones(2, 2), torch.full((2,), 0.5)
    assert torch.equal(load_velocity_net(str(tmp_path / "flow.safetensors"))(x, t), net(x, t))
