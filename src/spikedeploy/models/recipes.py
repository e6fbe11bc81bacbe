"""Training recipes by name: what ``spikedeploy train --model NAME`` runs.

=============== ========================================================================
name            model
=============== ========================================================================
``mlp``         the reference snnTorch MLP (Leaky, spike-count readout)
``sdm-cnn``     SDM residual IF CNN (pre-spike residual blocks, BN) with TSM gains
``imp-lts``     IMP-SNN MLP (learned initial voltages) trained with LTS (last-step readout)
``imp-tets``    the same trained with TET-S (mean readout)
``fastsnn``     Fast-SNN: quantised ReLU MLP (trained, or ``onnx=FILE``) converted to IF
``sdm-denoiser`` tiny SDM-style spiking denoiser (epsilon prediction, noisy 8x8 digits)
``ugo-gelu``    STA universal group operator for GELU (also ``ugo-exp``, ``ugo-recip``,
                ``ugo-rsqrt``), converted to IF neurons over T steps
=============== ========================================================================

:func:`train_recipe` maps the command line's options onto each recipe's
arguments and refuses options a recipe does not take. ``mlp``, ``snn-cnn``
and ``snn-rnn`` take ``shared_neuron_params=True``: one beta and one
threshold per layer instead of per neuron, as Intel's stock Loihi LIF
process holds one du/dv/threshold per population.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import SpikedeployError
from .fit import Trained
from .footprint import check_training


def _on_events(architecture, dataset, **options):
    """mlp and snn-cnn on a tonic dataset's frames (options left None take the defaults)."""
    from .event_train import train_on_events
    return train_on_events(architecture, dataset,
                           **{k: v for k, v in options.items() if v is not None})


def _mlp(hidden=None, num_steps=None, encoding=None, epochs=None, seed=0, train_subset=None,
         shared_neuron_params=None, dataset=None, batch_size=None):
    if dataset is not None:
        if encoding is not None:
            raise SpikedeployError("--encoding: event frames are the input as they are")
        return _on_events("mlp", dataset, hidden=hidden, num_steps=num_steps, epochs=epochs,
                          seed=seed, train_subset=train_subset, batch_size=batch_size,
                          shared_neuron_params=shared_neuron_params)
    if batch_size is not None:
        raise SpikedeployError("--batch-size goes with --dataset (digits train in batches of 64)")
    from .checkpoint import training_config
    from .mlp_training import TrainConfig, train
    kwargs = {k: v for k, v in dict(hidden=hidden, num_steps=num_steps, encoding=encoding,
                                    epochs=epochs, train_subset=train_subset,
                                    shared_neuron_params=shared_neuron_params).items()
              if v is not None}
    result = train(TrainConfig(seed=seed, **kwargs))
    return Trained(result.model, training_config(result))


def _sdm(**kw):
    from .sdm import train_sdm_cnn
    return train_sdm_cnn(**kw)


def _imp(loss):
    def run(**kw):
        from .imp import train_imp
        return train_imp(loss=loss, **kw)
    return run


def _fastsnn(**kw):
    from .fastsnn import train_fastsnn
    return train_fastsnn(**kw)


def _denoiser(**kw):
    from .denoiser import train_denoiser
    return train_denoiser(**kw)


def _cnn(dataset=None, batch_size=None, **kw):
    if dataset is not None:
        return _on_events("snn-cnn", dataset, batch_size=batch_size, **kw)
    if batch_size is not None:
        raise SpikedeployError("--batch-size goes with --dataset (digits train in batches of 64)")
    from .cnn import train_cnn
    return train_cnn(**kw)


def _rnn(**kw):
    from .recurrent import train_rnn
    return train_rnn(**kw)


def _ugo(name):
    def run(**kw):
        from .ugo import train_ugo
        return train_ugo(name, **kw)
    return run


@dataclass(frozen=True)
class Recipe:
    run: Callable[..., Trained]
    options: tuple          # option names (train_recipe keywords) the recipe takes
    summary: str


_COMMON = ("seed", "epochs", "train_subset")
_SHARED = ("shared_neuron_params",)   # one beta and threshold per layer (Loihi's stock LIF)
_EVENTS = ("dataset", "batch_size")    # a tonic dataset's frames instead of digits
RECIPES: dict[str, Recipe] = {
    "mlp": Recipe(_mlp, _COMMON + _SHARED + _EVENTS + ("hidden", "num_steps", "encoding"),
                  "reference snnTorch MLP (Leaky neurons, spike-count readout)"),
    "sdm-cnn": Recipe(_sdm, _COMMON + ("num_steps", "channels", "blocks", "tsm", "tsm_epochs"),
                      "SDM residual IF CNN with TSM gains (BN folded at export)"),
    "imp-lts": Recipe(_imp("lts"), _COMMON + ("hidden", "num_steps"),
                      "IMP-SNN MLP, learned initial voltages, LTS loss (last-step readout)"),
    "imp-tets": Recipe(_imp("tet_s"), _COMMON + ("hidden", "num_steps"),
                       "IMP-SNN MLP, learned initial voltages, TET-S loss (mean readout)"),
    "fastsnn": Recipe(_fastsnn, _COMMON + ("hidden", "bits", "onnx_path", "qat_epochs"),
                      "Fast-SNN: quantised ReLU MLP converted to IF neurons (T = 2^bits - 1)"),
    "sdm-denoiser": Recipe(_denoiser, _COMMON + ("num_steps", "channels", "blocks", "tsm",
                                                 "tsm_epochs"),
                           "SDM-style spiking denoiser: epsilon prediction on noisy 8x8 digits"),
    "snn-cnn": Recipe(_cnn, _COMMON + _SHARED + _EVENTS + ("num_steps",),
                      "Leaky CNN: conv -> LIF -> avg-pool -> conv -> LIF -> flatten -> fc -> LIF"),
    "snn-rnn": Recipe(_rnn, _COMMON + _SHARED + ("hidden", "num_steps"),
                      "recurrent Leaky network: fc -> RLeaky (all-to-all) -> fc -> LIF"),
}
for _name in ("gelu", "exp", "recip", "rsqrt"):
    RECIPES[f"ugo-{_name}"] = Recipe(_ugo(_name), ("seed", "hidden", "num_steps", "fit_steps"),
                                     f"STA universal group operator for {_name}, as IF neurons")


def train_recipe(name: str, **options) -> Trained:
    """Run recipe ``name``; options set to None take the recipe's defaults."""
    if name not in RECIPES:
        raise SpikedeployError(f"unknown model {name!r} (known: {', '.join(RECIPES)})")
    recipe = RECIPES[name]
    given = {k: v for k, v in options.items() if v is not None}
    foreign = sorted(set(given) - set(recipe.options) - {"seed"})
    if foreign:
        raise SpikedeployError(f"model {name!r} does not take option(s) "
                               f"{', '.join(k.replace('_path', '').replace('_', '-') for k in foreign)}")
    check_training(name, given)
    if "seed" not in recipe.options:
        given.pop("seed", None)
    return recipe.run(**given)
