"""The training loop of GapClosingAdapter, kept apart from the estimator.

Everything random (batches, expert draws, mixup) comes from one NumPy
``RandomState``, so a run is reproduced by its seed.
"""

import time

import numpy as np
import torch
import torch.nn.functional as F

from ..measure import retrieval_recall_at_k
from ._curriculum import expert_probability
from ._data import batches
from ._device import to_numpy
from .losses import LearnableTemperature
from .losses import _align_true_pairs as align_true_pairs
from .losses import _centroid_uniformity as centroid_uniformity
from .losses import _clip_loss as clip_loss

LOSS_KEYS = ("loss", "clip", "atp", "cu")


def objective(Z, temperature, w_atp, w_cu):
    """``(total, clip, atp, cu)`` on unit outputs ``Z`` (one tensor per modality, anchor 0)."""
    clip = torch.stack([clip_loss(Z[0], z, temperature) for z in Z[1:]]).mean()
    atp = align_true_pairs(*Z, anchor=0)
    cu = centroid_uniformity(*Z)
    return clip + w_atp * atp + w_cu * cu, clip, atp, cu


def mixup(blocks, lam, perm):
    """Mix item ``i`` with item ``perm[i]`` in every modality, then renormalise."""
    return [F.normalize(lam * B + (1.0 - lam) * B[perm], dim=1) for B in blocks]


def centroid_gap(Z):
    """Mean over modalities m > 0 of ``||mean(z^0) - mean(z^m)||``."""
    mu = [z.mean(dim=0) for z in Z]
    return float(torch.stack([torch.linalg.norm(mu[0] - m) for m in mu[1:]]).mean())


def mean_recall_at_1(Z):
    """R@1 of block 0 against each other block and back, averaged (NumPy blocks)."""
    values = []
    for z in Z[1:]:
        r = retrieval_recall_at_k(Z[0], z, k=1)
        values += [r["image_to_text_recall@1"], r["text_to_image_recall@1"]]
    return float(np.mean(values))


def _n_chunks(n, size):
    return max(1, -(-n // size))


class Trainer:
    """Train ``heads`` on unit blocks with the settings of ``est``.

    Parameters
    ----------
    est : GapClosingAdapter
        Source of the hyper-parameters (read only).
    heads : skgap.train._heads.Heads
    blocks : list of tensor
        Unit rows of each modality, all pairs.
    expert : list of tensor or None
        Unit rows of the expert pairs.
    rng : numpy.random.RandomState
    """

    def __init__(self, est, heads, blocks, expert, rng):
        self.est = est
        self.heads = heads
        self.blocks = blocks
        self.expert = expert
        self.rng = rng
        self.device = blocks[0].device
        groups = [{"params": list(heads.parameters()), "weight_decay": est.weight_decay}]
        self.tau_module = None
        if est.learn_temperature:
            self.tau_module = LearnableTemperature(init=float(est.temperature)).to(self.device)
            groups.append({"params": list(self.tau_module.parameters()), "weight_decay": 0.0})
        self.optimizer = torch.optim.AdamW(groups, lr=est.lr)

    def temperature(self):
        if self.tau_module is None:
            return float(self.est.temperature)
        return self.tau_module()

    def _index(self, idx):
        return torch.as_tensor(idx, device=self.device)

    def _batch(self, idx, step, n_steps):
        """The step's pairs: the batch, maybe expert pairs, maybe mixed up."""
        est, rng = self.est, self.rng
        batch = [B[self._index(idx)] for B in self.blocks]
        used_expert, lam = False, None
        if self.expert is not None and rng.random_sample() < expert_probability(step, n_steps):
            n_expert = self.expert[0].shape[0]
            e_idx = self._index(rng.choice(n_expert, min(est.batch_size, n_expert), replace=False))
            batch = [torch.cat([b, E[e_idx]]) for b, E in zip(batch, self.expert)]
            used_expert = True
        if est.mixup_alpha > 0:
            lam = float(rng.beta(est.mixup_alpha, est.mixup_alpha))
            batch = mixup(batch, lam, self._index(rng.permutation(batch[0].shape[0])))
        return batch, used_expert, lam

    def run(self, train_idx, val_idx):
        """Train; return ``(history, params, temperature, best_epoch)``."""
        est = self.est
        n_steps = est.epochs * _n_chunks(train_idx.size, est.batch_size)
        history, step = [], 0
        best_loss, best, no_improve = np.inf, None, 0
        for epoch in range(1, est.epochs + 1):
            tic = time.perf_counter()
            self.heads.train()
            sums, n_batches, expert_steps, lambdas = np.zeros(4), 0, 0, []
            for idx in batches(train_idx, est.batch_size, self.rng):
                batch, used_expert, lam = self._batch(idx, step, n_steps)
                terms = objective(self.heads(batch), self.temperature(), est.w_atp, est.w_cu)
                self.optimizer.zero_grad(set_to_none=True)
                terms[0].backward()
                self.optimizer.step()
                sums += [float(t.detach()) for t in terms]
                n_batches += 1
                step += 1
                expert_steps += used_expert
                if lam is not None:
                    lambdas.append(lam)
            record = {"epoch": epoch}
            record.update(zip(("train_" + k for k in LOSS_KEYS), (sums / n_batches).tolist()))
            record.update(self._evaluate(train_idx, val_idx))
            record.update(
                expert_steps=expert_steps,
                mixup_lambda=float(np.mean(lambdas)) if lambdas else float("nan"),
                time=time.perf_counter() - tic,
            )
            history.append(record)
            if est.verbose:
                print(
                    f"epoch {epoch:3d}  loss {record['train_loss']:.4f}  "
                    f"valid {record['valid_loss']:.4f}  gap {record['train_gap']:.3f}  "
                    f"R@1 {record['valid_recall@1']:.3f}"
                )
            if not est.early_stopping:
                continue
            if record["valid_loss"] < best_loss - est.tol:
                best_loss, no_improve = record["valid_loss"], 0
                best = (self.heads.numpy_params(), record["temperature"], epoch)
            else:
                no_improve += 1
                if no_improve >= est.n_iter_no_change:
                    break
        if best is None:
            best = (self.heads.numpy_params(), float(self.temperature()), len(history))
        return (history,) + best

    @torch.no_grad()
    def _evaluate(self, train_idx, val_idx):
        """Gap of the training pairs; losses, gap and R@1 of the validation pairs."""
        est = self.est
        self.heads.eval()
        tau = float(self.temperature())
        out = {}
        Z_train = self.heads([B[self._index(train_idx)] for B in self.blocks])
        out["train_gap"] = centroid_gap(Z_train)
        if val_idx.size:
            Z = self.heads([B[self._index(val_idx)] for B in self.blocks])
            # Losses over chunks of the training batch size, so the contrastive
            # term sees as many negatives as in training.
            n_chunks = _n_chunks(val_idx.size, est.batch_size)
            chunks = np.array_split(np.arange(val_idx.size), n_chunks)
            parts = [
                [float(t) for t in objective([z[c] for z in Z], tau, est.w_atp, est.w_cu)]
                for c in chunks
            ]
            out.update(zip(("valid_" + k for k in LOSS_KEYS), np.mean(parts, axis=0).tolist()))
            out["valid_gap"] = centroid_gap(Z)
            out["valid_recall@1"] = mean_recall_at_1([to_numpy(z) for z in Z])
        else:
            keys = ["valid_" + k for k in LOSS_KEYS] + ["valid_gap", "valid_recall@1"]
            out.update(dict.fromkeys(keys, float("nan")))
        out["temperature"] = tau
        return out
