"""Word vectors: co-occurrence counts, PPMI + SVD, GloVe in PyTorch, export and evaluation.

The pieces of lesson 02, each usable on its own::

    from textft_lib import data, vectors
    docs = vectors.wiki_corpus()                       # list[list[str]], one per article
    vocab = vectors.build_vocab(docs, min_count=5)     # Vocab: words sorted by frequency
    ids = vectors.encode(docs, vocab)                  # list[np.ndarray] of word ids
    C = vectors.cooccurrence(ids, len(vocab), window=10)   # scipy CSR, (V, V), 1/distance weights
    keep = vectors.keep_probabilities(vocab.counts, sample=1e-4)   # word2vec's subsampling, (V,)
    C = vectors.subsampled_cooccurrence(ids, keep, window=10)      # its expected counts, (V, V)
    result = vectors.train_glove(C, dim=100, epochs=30)    # GloVeResult: vectors (V, dim), losses
    kv = vectors.to_keyed_vectors(vocab.words, result.vectors)
    vectors.evaluate(kv)                               # wordsim353, simlex999, analogies

Every set of vectors (our GloVe, PPMI+SVD, gensim's word2vec, pretrained GloVe) is
turned into gensim ``KeyedVectors`` so that one ``evaluate`` serves them all.
``course_glove()`` returns the lesson's GloVe vectors, trained once and cached.

Shapes: ``V`` is the vocabulary size, ``d`` the vector dimension, ``nnz`` the number of
non-zero co-occurrence entries.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from tqdm.auto import tqdm

from textft_lib import config, data
from textft_lib.cache import atomic_write, key
from textft_lib.checks import check_int, check_number, string_list

if TYPE_CHECKING:  # heavy imports only for type checkers
    import numpy as np
    import scipy.sparse
    from gensim.models import KeyedVectors

# --------------------------------------------------------------------------- tokens and vocabulary

_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lowercase ``text`` and return its words (letters and digits, with an inner apostrophe).

    Simpler than lesson 01's ``text.regex_tokenize`` on purpose: word vectors are learned
    for words, so punctuation, URLs and symbols are dropped rather than kept as tokens.

    Example::

        >>> tokenize("GloVe's vectors, 2014!")
        ["glove's", 'vectors', '2014']
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize expects a str, got {type(text).__name__}")
    return _WORD_RE.findall(text.lower())


def wiki_corpus(limit: int | None = None) -> list[list[str]]:
    """The course's Wikipedia corpus (``data.load("wiki")``), tokenized: one list per article.

    ``limit`` keeps the first articles (quick mode uses fewer). About 106 articles and
    ~484k tokens in all.
    """
    return [tokenize(a.text) for a in data.load("wiki", limit=limit)]


@dataclass
class Vocab:
    """Words sorted by falling frequency; ``index[word]`` is the row of the word's vector.

    Not lesson 01's ``text.Vocab``, on purpose: no special tokens (``[PAD]``, ``[UNK]``...), so
    row ``i`` of a co-occurrence matrix and of every vector table is word ``i``, and the counts
    (for subsampling and negative sampling) travel with the words."""

    words: list[str]
    counts: list[int]
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.words) != len(self.counts):
            raise ValueError(f"{len(self.words)} words but {len(self.counts)} counts")
        self.index = {w: i for i, w in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("the vocabulary has repeated words")

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def __repr__(self) -> str:
        head = ", ".join(self.words[:5])
        return f"Vocab({len(self)} words: {head}, ...)"


def _check_counts(values: "np.ndarray") -> None:
    """Co-occurrence counts (the non-zero entries of ``X``) must be finite and non-negative."""
    import numpy as np

    if not np.isfinite(values).all():
        raise ValueError("X has NaN or infinite entries; co-occurrence counts must be finite")
    if np.any(values < 0):
        raise ValueError("X has negative entries; co-occurrence counts must be non-negative")


def _check_docs(docs: Sequence[Sequence[str]]) -> None:
    if not isinstance(docs, Sequence) and hasattr(docs, "__next__"):
        raise TypeError("expected a list of documents, got a generator or iterator (it can be read only "
                        "once): pass list(...) of it")
    if isinstance(docs, str):
        raise TypeError("expected a list of documents, each a list of tokens, not one string: "
                        "tokenize each text first, e.g. [tokenize(t) for t in texts]")
    for i, doc in enumerate(docs):
        if isinstance(doc, str):
            raise TypeError(f"expected a list of documents, each a list of tokens, but document {i} is a string: "
                            "tokenize each text first, e.g. [tokenize(t) for t in texts]")
    if sum(len(d) for d in docs) == 0:
        raise ValueError("the corpus is empty: no document has any token")


def build_vocab(docs: Sequence[Sequence[str]], *, min_count: int = 5, max_size: int | None = None) -> Vocab:
    """Count tokens and keep those seen at least ``min_count`` times (at most ``max_size``).

    Ties in frequency are broken alphabetically, so the vocabulary is deterministic.

    Example::

        >>> build_vocab([["a", "b", "a"]], min_count=1).words
        ['a', 'b']
    """
    _check_docs(docs)
    min_count = check_int(min_count, "min_count", minimum=1)
    if max_size is not None:
        max_size = check_int(max_size, "max_size", minimum=1)
    counts = Counter(tok for doc in docs for tok in doc)
    kept = sorted(((w, c) for w, c in counts.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
    if max_size is not None:
        kept = kept[:max_size]
    if not kept:
        raise ValueError(f"no word occurs {min_count} times or more: lower min_count or use a bigger corpus")
    return Vocab([w for w, _ in kept], [c for _, c in kept])


def encode(docs: Sequence[Sequence[str]], vocab: Vocab) -> list["np.ndarray"]:
    """Turn each document into an int64 array of word ids, dropping out-of-vocabulary words.

    Dropping (rather than marking) unknown words is what GloVe's ``cooccur`` and
    word2vec do: the words on either side of a rare word become neighbours.
    """
    import numpy as np

    _check_docs(docs)
    index = vocab.index
    return [np.fromiter((index[t] for t in doc if t in index), dtype=np.int64) for doc in docs]


# --------------------------------------------------------------------------- co-occurrence counts


def _check_window(window: int, weighting: str) -> None:
    import numpy as np

    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be an integer of at least 1, got {window!r}")
    if weighting not in {"harmonic", "uniform"}:
        raise ValueError(f"weighting must be 'harmonic' or 'uniform', got {weighting!r}")


def _stack_ids(docs: Sequence["np.ndarray"], vocab_size: int) -> tuple["np.ndarray", "np.ndarray"]:
    """Check the documents' word ids and concatenate them: ids (N,) and the document of each token (N,)."""
    import numpy as np

    if vocab_size < 1:
        raise ValueError(f"vocab_size must be at least 1, got {vocab_size}")
    arrays = [np.asarray(d) for d in docs]
    if any(a.ndim != 1 for a in arrays):
        raise ValueError("each document must be a 1-D array of word ids (use encode())")
    for n, a in enumerate(arrays):
        if a.size and not np.issubdtype(a.dtype, np.integer):  # floats would be truncated, bools read as 0/1
            raise TypeError(f"document {n} holds {a.dtype} values; word ids must be integers (use encode())")
    arrays = [a.astype(np.int64) for a in arrays]
    if sum(a.size for a in arrays) == 0:
        raise ValueError("the corpus is empty: no document has any word id")
    ids = np.concatenate(arrays)
    if ids.min() < 0 or ids.max() >= vocab_size:
        raise ValueError(f"word ids must lie in [0, {vocab_size}), got range [{ids.min()}, {ids.max()}]")
    return ids, np.repeat(np.arange(len(arrays)), [a.size for a in arrays])


def cooccurrence(docs: Sequence["np.ndarray"], vocab_size: int, *, window: int = 10,
                 weighting: str = "harmonic", symmetric: bool = True) -> "scipy.sparse.csr_matrix":
    """The word-word co-occurrence matrix ``X`` (V, V) as float64 scipy CSR.

    ``X[i, j]`` sums, over every time word ``j`` appears within ``window`` words after word
    ``i`` in the same document, the weight ``1 / distance`` (``weighting="harmonic"``, as
    GloVe does) or 1 (``weighting="uniform"``). With ``symmetric=True`` the words before
    count as well, so ``X`` equals its transpose.

    The work is vectorized per offset: for ``k = 1..window`` all pairs ``(ids[t],
    ids[t+k])`` of the whole corpus are formed at once, so there is no Python loop over
    pairs. ``docs`` are arrays of word ids (from ``encode``); windows never cross documents.

    Example::

        >>> X = cooccurrence([np.array([0, 1, 2])], 3, window=2)
        >>> X.toarray()      # 0-1 at distance 1, 0-2 at distance 2, 1-2 at distance 1
        array([[0. , 1. , 0.5], [1. , 0. , 1. ], [0.5, 1. , 0. ]])
    """
    import numpy as np
    import scipy.sparse as sp

    _check_window(window, weighting)
    ids, doc_of = _stack_ids(docs, vocab_size)

    # Accumulate each offset's pairs into one sparse matrix; CSR addition sums duplicates.
    X = sp.csr_matrix((vocab_size, vocab_size), dtype=np.float64)
    for k in range(1, window + 1):
        if k >= ids.size:
            break
        same_doc = doc_of[:-k] == doc_of[k:]
        left, right = ids[:-k][same_doc], ids[k:][same_doc]
        weight = 1.0 / k if weighting == "harmonic" else 1.0
        data = np.full(left.size, weight)
        X = X + sp.csr_matrix((data, (left, right)), shape=(vocab_size, vocab_size))
    if symmetric:
        X = X + X.T
    X = X.tocsr()
    X.sum_duplicates()
    X.eliminate_zeros()
    return X


def keep_probabilities(counts: Sequence[int], *, sample: float = 1e-3) -> "np.ndarray":
    """word2vec's subsampling of frequent words: the probability of keeping each occurrence
    of each word, (V,) float64.

    With ``t = sample * sum(counts)``, a word seen ``c`` times is kept with probability
    ``min(1, (sqrt(c / t) + 1) * t / c)``, the formula of word2vec's C code and of gensim
    (``sample=1e-3`` is their default). Words seen fewer than about ``2.6 t`` times are always
    kept; *the*, *of*, *and* lose most of their occurrences.

    Example::

        >>> keep_probabilities([10_000, 100, 5], sample=1e-3).round(2)   # t = 10.1
        array([0.03, 0.42, 1.  ])
    """
    import numpy as np

    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"counts must be a non-empty 1-D sequence, got shape {c.shape}")
    if not np.isfinite(c).all() or np.any(c <= 0):
        raise ValueError("every count must be a positive, finite number (the vocabulary's counts)")
    sample = check_number(sample, "sample", low=0, low_open=True)
    t = sample * c.sum()
    return np.minimum(1.0, (np.sqrt(c / t) + 1.0) * t / c)


def subsampled_cooccurrence(docs: Sequence["np.ndarray"], keep: Sequence[float], *, window: int = 10,
                            weighting: str = "harmonic", max_offset: int | None = None) -> "scipy.sparse.csr_matrix":
    """The co-occurrence matrix (V, V) that frequent-word subsampling gives on average.

    word2vec drops each occurrence of word ``w`` with probability ``1 - keep[w]`` (see
    ``keep_probabilities``) *before* it forms its windows. That does two things: pairs with
    a frequent word count less, and the words left close ranks, so two content words that
    stood 15 positions apart with stop words in between can end up inside one window.

    This function returns the expectation, over all random draws, of ``cooccurrence`` of the
    subsampled corpus (symmetric, same ``window`` and ``weighting``), computed exactly instead
    of sampled: for two positions ``k`` apart in one document, the pair counts when both
    words are kept (probability ``keep_t * keep_{t+k}``) and fewer than ``window`` of the
    ``k - 1`` words between them are kept; if ``s`` of them are, the distance becomes
    ``s + 1`` and adds ``weight(s + 1)``. The distribution of ``s`` is a (N, window) array
    updated once per offset (adding the next word between: kept or not), so the cost is
    ``max_offset`` vectorized steps over the N tokens. Offsets beyond ``max_offset``
    (default ``4 * window``) are ignored: such a pair counts only when at least
    ``3 * window`` of the words between are dropped. With every ``keep`` equal to 1 the
    result equals ``cooccurrence``.

    Example::

        >>> keep = keep_probabilities(vocab.counts, sample=1e-4)
        >>> X = subsampled_cooccurrence(ids, keep, window=10)    # (V, V) CSR, more non-zeros
    """
    import numpy as np
    import scipy.sparse as sp

    _check_window(window, weighting)
    p_word = np.asarray(keep, dtype=np.float64)
    if p_word.ndim != 1:
        raise ValueError(f"keep must be 1-D (one probability per word), got shape {p_word.shape}")
    if not np.all((p_word >= 0) & (p_word <= 1)):
        raise ValueError("keep must hold probabilities in [0, 1]")
    max_offset = 4 * window if max_offset is None else max_offset
    if isinstance(max_offset, bool) or not isinstance(max_offset, (int, np.integer)) or max_offset < window:
        raise ValueError(f"max_offset must be an integer of at least window={window}, got {max_offset!r}")
    V = p_word.size
    ids, doc_of = _stack_ids(docs, V)
    p = p_word[ids]                                                       # (N,) keep probability per token
    N = ids.size
    dist_weight = 1.0 / np.arange(1, window + 1) if weighting == "harmonic" else np.ones(window)
    between = np.zeros((N, window))            # between[t, s] = P(s of the words strictly between t and t+k are kept)
    between[:, 0] = 1.0                        # k = 1: no word between
    X = sp.csr_matrix((V, V), dtype=np.float64)
    for k in range(1, min(max_offset, N - 1) + 1):
        n = N - k
        same_doc = doc_of[:n] == doc_of[k:]
        expected = p[:n] * p[k:] * (between[:n] @ dist_weight)            # (n,) expected weight of pair (t, t+k)
        pair = same_doc & (expected > 0)
        X = X + sp.csr_matrix((expected[pair], (ids[:n][pair], ids[k:][pair])), shape=(V, V))
        # the word at t+k becomes one more word between t and t+k+1
        kept = np.zeros(N)
        kept[:n] = p[k:]
        between[:, 1:] = between[:, 1:] * (1 - kept)[:, None] + between[:, :-1] * kept[:, None]
        between[:, 0] *= 1 - kept
    X = (X + X.T).tocsr()
    X.sum_duplicates()
    X.eliminate_zeros()
    return X


def glove_cooccurrence(ids: Sequence["np.ndarray"], vocab: Vocab, *, window: int = 10,
                       sample: float | None = None) -> "scipy.sparse.csr_matrix":
    """The co-occurrence matrix (V, V) that ``course_glove`` trains on.

    ``sample=None`` gives ``cooccurrence(ids, len(vocab), window=window)``; a number first
    subsamples frequent words as word2vec does (``keep_probabilities(vocab.counts, sample=...)``)
    and returns the expected counts of ``subsampled_cooccurrence``.
    """
    if sample is None:
        return cooccurrence(ids, len(vocab), window=window)
    return subsampled_cooccurrence(ids, keep_probabilities(vocab.counts, sample=sample), window=window)


# --------------------------------------------------------------------------- PPMI and SVD


def ppmi(X: "scipy.sparse.spmatrix", *, alpha: float = 0.75) -> "scipy.sparse.csr_matrix":
    """Positive pointwise mutual information of a co-occurrence matrix (V, V), sparse.

    ``PMI(i, j) = log( P(i, j) / (P(i) P_alpha(j)) )``, negative values clipped to 0. The
    context distribution is smoothed with ``alpha`` (Levy et al., 2015): counts raised to
    0.75 give rare contexts less inflated PMI. Only non-zero entries are computed.
    """
    import numpy as np
    import scipy.sparse as sp

    X = sp.csr_matrix(X, dtype=np.float64)
    if X.shape[0] != X.shape[1]:
        raise ValueError(f"X must be a square (V, V) co-occurrence matrix, got shape {X.shape}")
    _check_counts(X.data)
    check_number(alpha, "alpha", low=0, low_open=True)
    total = X.sum()
    if total <= 0:
        raise ValueError("the co-occurrence matrix has no positive entry")
    row = np.asarray(X.sum(axis=1)).ravel() / total
    col = np.asarray(X.sum(axis=0)).ravel() ** alpha
    col = col / col.sum()
    coo = X.tocoo()
    pmi = np.log(coo.data / total) - np.log(row[coo.row]) - np.log(col[coo.col])
    keep = pmi > 0
    return sp.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=X.shape)


def svd_vectors(M: "scipy.sparse.spmatrix", dim: int, *, seed: int = 0) -> "np.ndarray":
    """Dense ``dim``-dimensional word vectors (V, dim) from a truncated SVD of ``M``.

    Returns ``U * sqrt(S)`` (the symmetric split of the singular values, which works
    better for similarity than ``U * S``).
    """
    import numpy as np
    from sklearn.utils.extmath import randomized_svd

    if not 1 <= dim < min(M.shape):
        raise ValueError(f"dim must lie in [1, {min(M.shape)}), got {dim}")
    U, S, _ = randomized_svd(M, n_components=dim, random_state=seed)
    return (U * np.sqrt(S)).astype(np.float32)


# --------------------------------------------------------------------------- GloVe


def glove_weight(x: Any, *, x_max: float = 100.0, alpha: float = 0.75) -> Any:
    """GloVe's weighting function ``f(x) = min(1, (x / x_max) ** alpha)`` (numpy or torch)."""
    ratio = (x / x_max) ** alpha
    return ratio.clip(max=1.0) if hasattr(ratio, "clip") else min(1.0, ratio)


def _glove_model_class() -> type:
    import torch
    from torch import nn

    class GloVeModel(nn.Module):
        """GloVe's parameters: word vectors ``w`` and context vectors ``w_ctx`` (V, d), and
        their biases ``b``, ``b_ctx`` (V,).

        ``forward(i, j)`` returns ``w_i . w~_j + b_i + b~_j`` for index tensors ``i, j``
        of shape (B,): the model's estimate of ``log X_ij``, shape (B,).
        """

        def __init__(self, vocab_size: int, dim: int) -> None:
            super().__init__()
            if vocab_size < 1 or dim < 1:
                raise ValueError(f"vocab_size and dim must be at least 1, got {vocab_size}, {dim}")
            # GloVe's reference code draws everything uniformly in [-0.5/d, 0.5/d].
            def init(*shape: int) -> nn.Parameter:
                return nn.Parameter((torch.rand(*shape) - 0.5) / dim)

            self.w, self.w_ctx = init(vocab_size, dim), init(vocab_size, dim)
            self.b, self.b_ctx = init(vocab_size), init(vocab_size)

        def forward(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
            return (self.w[i] * self.w_ctx[j]).sum(dim=-1) + self.b[i] + self.b_ctx[j]   # (B,)

        def vectors(self) -> torch.Tensor:
            """The final word vectors ``W + W~`` (V, d), as in the GloVe paper."""
            return (self.w + self.w_ctx).detach()

    return GloVeModel


def GloVeModel(vocab_size: int, dim: int) -> Any:
    """Create GloVe's model (a ``torch.nn.Module``): see its ``forward`` and ``vectors``.

    Example::

        >>> model = GloVeModel(vocab_size=1000, dim=50)
        >>> model(torch.tensor([0, 1]), torch.tensor([2, 3])).shape
        torch.Size([2])
    """
    return _glove_model_class()(vocab_size, dim)


def glove_loss(pred: Any, log_x: Any, weight: Any) -> Any:
    """GloVe's weighted least squares, averaged over the batch:
    ``mean( f(X_ij) * (pred_ij - log X_ij) ** 2 )``; all three tensors have shape (B,)."""
    if not (pred.shape == log_x.shape == weight.shape):
        raise ValueError(f"pred, log_x and weight must have one shape, got {tuple(pred.shape)}, "
                         f"{tuple(log_x.shape)}, {tuple(weight.shape)}")
    return (weight * (pred - log_x) ** 2).mean()


@dataclass
class GloVeResult:
    """What ``train_glove`` returns: final vectors ``W + W~`` (V, d) float32, the mean
    weighted loss of every epoch, the training time in seconds, and the model."""

    vectors: "np.ndarray"
    losses: list[float]
    seconds: float
    model: Any = field(repr=False, default=None)


def _glove_batch_gradient(params: list, grads: list, i: Any, j: Any, log_x: Any, weight: Any,
                          rows_i: Any, rows_j: Any) -> Any:
    """Write the gradient of one batch's loss ``1/2 sum f(X_ij) (pred_ij - log X_ij)^2`` into
    ``grads`` (shaped like ``params = [W, W~, b, b~]``) and return the batch's summed
    ``f * (pred - log X)^2`` (a 0-d tensor).

    ``i, j, log_x, weight`` have shape (B,); ``rows_i, rows_j`` are preallocated (B, d)
    buffers that receive the rows ``w_i`` and ``w~_j`` (reusing them spares an allocation
    of B x d floats per batch, which on a CPU costs as much as the gather itself).
    """
    import torch

    w, w_ctx, b, b_ctx = params
    wi = torch.index_select(w, 0, i, out=rows_i)                               # (B, d)
    wj = torch.index_select(w_ctx, 0, j, out=rows_j)                           # (B, d)
    diff = torch.einsum("bd,bd->b", wi, wj)                                    # w_i . w~_j, (B,)
    diff += b[i]
    diff += b_ctx[j]
    diff -= log_x                                                              # pred - log X, (B,)
    err = weight * diff                                                        # e_ij, (B,)
    for g in grads:
        g.zero_()
    grads[0].index_add_(0, i, wj.mul_(err[:, None]))                           # dL/dw_i  = e_ij w~_j
    grads[1].index_add_(0, j, wi.mul_(err[:, None]))                           # dL/dw~_j = e_ij w_i
    grads[2].index_add_(0, i, err)
    grads[3].index_add_(0, j, err)
    return torch.dot(err, diff)


def train_glove(X: "scipy.sparse.spmatrix", *, dim: int = 100, epochs: int = 15, batch_size: int = 16384,
                lr: float = 0.2, x_max: float = 10.0, alpha: float = 0.75, seed: int = 0,
                initial_accumulator: float = 0.1, device: Any = None, num_threads: int | None = 1,
                progress: bool = True) -> GloVeResult:
    """Train GloVe on the non-zero entries of the co-occurrence matrix ``X`` (V, V).

    Each epoch shuffles the ``nnz`` entries ``(i, j, X_ij)`` (a seeded generator; the four
    (nnz,) arrays are permuted once per epoch, so that every mini-batch is a contiguous
    slice of ``batch_size`` entries). The gradient of the batch's summed loss
    ``1/2 sum f(X_ij) (w_i.w~_j + b_i + b~_j - log X_ij)^2`` has a closed form: with
    ``e_ij = f(X_ij) (pred_ij - log X_ij)``, row ``w_i`` gets ``e_ij w~_j``, row ``w~_j`` gets
    ``e_ij w_i``, and the biases get ``e_ij``. ``index_add_`` sums these per row into
    gradients shaped like the parameters (a word that appears many times in the batch gets
    the sum), and Adagrad applies them: one accumulator per parameter entry, starting at
    ``initial_accumulator``, then ``acc += g^2; p -= lr * g / sqrt(acc)`` (``torch.optim.Adagrad``
    with ``eps=0``, fused into one pass over each parameter on CPU and CUDA). Rows the batch
    did not touch have a zero gradient and do not move. No autograd graph is built, which on
    a CPU is several times faster than ``loss.backward()`` for these gathers and scatters.
    The returned vectors are ``W + W~``; ``losses`` holds the mean of ``f * (pred - log X)^2``
    per epoch.

    On a CPU, ``num_threads`` sets torch's thread count during training (restored after):
    each batch's operations are small gathers and scatters, for which one thread is
    usually fastest, and several threads slow down badly when other processes share the
    cores. ``None`` keeps torch's setting.

    Example::

        >>> result = train_glove(X, dim=50, epochs=10)
        >>> result.vectors.shape, result.losses[-1] < result.losses[0]
        ((V, 50), True)
    """
    # One function on purpose: lesson 02 reads GloVe's training top to bottom (checks, the
    # pairs on the device, Adagrad, the epochs); the gradient of a batch is its own function.
    import numpy as np
    import scipy.sparse as sp
    import torch
    if X.ndim != 2 or X.shape[0] != X.shape[1]:
        raise ValueError(f"X must be square (V, V), got shape {X.shape}")
    coo = sp.coo_matrix(X)
    coo.eliminate_zeros()
    if coo.nnz == 0:
        raise ValueError("X has no non-zero entry: nothing to train on")
    _check_counts(coo.data)
    epochs, batch_size, dim = (check_int(v, n, minimum=1) for v, n in ((epochs, "epochs"), (batch_size, "batch_size"),
                                                                          (dim, "dim")))
    lr, x_max = check_number(lr, "lr", low=0, low_open=True), check_number(x_max, "x_max", low=0, low_open=True)
    alpha = check_number(alpha, "alpha", low=0)
    device = torch.device(device) if device is not None else torch.device("cpu")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)

    rows = torch.as_tensor(coo.row, dtype=torch.int64, device=device)
    cols = torch.as_tensor(coo.col, dtype=torch.int64, device=device)
    x = torch.as_tensor(coo.data, dtype=torch.float32, device=device)
    log_x, weight = torch.log(x), glove_weight(x, x_max=x_max, alpha=alpha)

    if num_threads is not None and device.type == "cpu":
        if num_threads < 1:
            raise ValueError(f"num_threads must be at least 1 (or None), got {num_threads}")
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(num_threads)
        try:
            return train_glove(X, dim=dim, epochs=epochs, batch_size=batch_size, lr=lr, x_max=x_max,
                               alpha=alpha, seed=seed, initial_accumulator=initial_accumulator,
                               device=device, num_threads=None, progress=progress)
        finally:
            torch.set_num_threads(previous_threads)

    model = GloVeModel(X.shape[0], dim).to(device)
    params = [model.w, model.w_ctx, model.b, model.b_ctx]                      # W, W~ (V, d); b, b~ (V,)
    for p in params:
        p.grad = torch.zeros_like(p)                                           # filled by hand each batch
    optimizer = torch.optim.Adagrad(params, lr=lr, eps=0.0, initial_accumulator_value=initial_accumulator,
                                    fused=True if device.type in ("cpu", "cuda") else None)
    batch = min(batch_size, coo.nnz)
    rows_i, rows_j = (torch.empty(batch, dim, device=device) for _ in range(2))   # (B, d) buffers
    losses: list[float] = []
    start = time.perf_counter()
    bar = tqdm(range(epochs), desc="GloVe", disable=not progress)
    with torch.no_grad():
        for _ in bar:
            order = torch.randperm(coo.nnz, generator=gen).to(device)
            shuffled = [t.index_select(0, order) for t in (rows, cols, log_x, weight)]   # 4 x (nnz,)
            total = torch.zeros((), device=device)
            for s in range(0, coo.nnz, batch_size):
                i, j, log_x_b, weight_b = (t[s:s + batch_size] for t in shuffled)        # (B,) slices
                n = len(i)
                total += _glove_batch_gradient(params, [p.grad for p in params], i, j, log_x_b, weight_b,
                                               rows_i[:n], rows_j[:n])
                optimizer.step()
            losses.append(float(total) / coo.nnz)
            if not math.isfinite(losses[-1]):
                raise FloatingPointError(f"GloVe's loss became {losses[-1]} in epoch {len(losses)}: lower lr")
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    seconds = time.perf_counter() - start
    for p in params:
        p.grad = None
    return GloVeResult(model.vectors().cpu().numpy().astype(np.float32), losses, seconds, model)


# --------------------------------------------------------------------------- gensim KeyedVectors


def to_keyed_vectors(words: Sequence[str], matrix: Any) -> "KeyedVectors":
    """Wrap ``matrix`` (V, d) with row ``i`` the vector of ``words[i]`` as gensim ``KeyedVectors``.

    Accepts a numpy array or a torch tensor. Example::

        >>> kv = to_keyed_vectors(["cat", "dog"], np.eye(2))
        >>> kv["dog"]
        array([0., 1.], dtype=float32)
    """
    import numpy as np
    from gensim.models import KeyedVectors

    if hasattr(matrix, "detach"):
        matrix = matrix.detach().cpu().numpy()
    matrix = np.asarray(matrix, dtype=np.float32)
    words = string_list(words, "words")
    if matrix.ndim != 2:
        raise ValueError(f"matrix must be 2-D (V, d), got shape {matrix.shape}")
    if matrix.shape[0] != len(words):
        raise ValueError(f"{len(words)} words but the matrix has {matrix.shape[0]} rows")
    if len(set(words)) != len(words):
        raise ValueError("the word list has repeated words")
    if not np.isfinite(matrix).all():
        raise ValueError("the matrix has NaN or infinite values")
    kv = KeyedVectors(vector_size=matrix.shape[1])
    kv.add_vectors(words, matrix)
    return kv


class GloveFormatError(ValueError):
    """A file is not in GloVe's text format; the message names the line."""


def load_glove_text(path: str | Path, *, limit: int | None = None) -> "KeyedVectors":
    """Load vectors in GloVe's text format: one ``word v1 v2 ... vd`` line per word.

    A first line of two integers (word2vec's ``count dim`` header, which gensim-data's
    files carry) is skipped. ``limit`` keeps the first words (GloVe files are sorted by
    frequency). Malformed lines raise ``GloveFormatError`` naming the file and line.

    Example::

        >>> kv = load_glove_text(data.load("glove_sample"))
        >>> kv.vector_size
        100
    """
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no GloVe file at {path}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim = None
    seen: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header "count dim"
            if parts == [""]:
                raise GloveFormatError(f"{path}:{lineno}: empty line")
            if dim is None:
                dim = len(parts) - 1
                if dim < 1:
                    raise GloveFormatError(f"{path}:{lineno}: expected 'word v1 ... vd', got {line[:60]!r}")
            if len(parts) != dim + 1:
                raise GloveFormatError(f"{path}:{lineno}: expected a word and {dim} numbers (as on the first "
                                       f"line), got {len(parts) - 1} values")
            try:
                vec = np.array(parts[1:], dtype=np.float32)
            except ValueError:
                raise GloveFormatError(f"{path}:{lineno}: the values after {parts[0]!r} are not all numbers") from None
            if parts[0] in seen:
                raise GloveFormatError(f"{path}:{lineno}: the word {parts[0]!r} appears a second time")
            seen.add(parts[0])
            words.append(parts[0])
            rows.append(vec)
            if limit is not None and len(words) >= limit:
                break
    if not words:
        raise GloveFormatError(f"{path}: the file holds no vectors")
    return to_keyed_vectors(words, np.stack(rows))


# --------------------------------------------------------------------------- evaluation


def similarity_spearman(kv: "KeyedVectors", pairs: Sequence[tuple[str, str, float]], *,
                        lowercase: bool = True) -> dict[str, Any]:
    """Spearman correlation between cosine similarities and human scores.

    Pairs with a word missing from ``kv`` are skipped and counted: the result holds
    ``spearman`` (NaN when fewer than 3 pairs are covered), ``covered`` and ``total``.
    """
    from scipy.stats import spearmanr

    if len(pairs) == 0:
        raise ValueError("no similarity pairs given")
    model, human = [], []
    for a, b, score in pairs:
        if lowercase:
            a, b = a.lower(), b.lower()
        if a in kv.key_to_index and b in kv.key_to_index:
            model.append(float(kv.similarity(a, b)))
            human.append(score)
    rho = float(spearmanr(model, human).statistic) if len(model) >= 3 else float("nan")
    return {"spearman": rho, "covered": len(model), "total": len(pairs)}


def analogy_accuracy(kv: "KeyedVectors", sections: dict[str, Sequence[tuple[str, str, str, str]]], *,
                     lowercase: bool = True, restrict_vocab: int = 30000, batch_size: int = 1024) -> dict[str, Any]:
    """Accuracy on ``a : b :: c : d`` questions by 3CosAdd: the answer is the word nearest
    to ``b - a + c`` (unit vectors), excluding ``a``, ``b`` and ``c``.

    Like word2vec's ``compute-accuracy`` and gensim, only the ``restrict_vocab`` most
    frequent words are candidates, and a question is covered when its four words are
    among them. Returns ``accuracy`` (over covered questions), ``correct``, ``covered``,
    ``total`` and per-section ``sections`` (name -> accuracy or NaN when none covered).
    """
    import numpy as np

    words = kv.index_to_key[:restrict_vocab]
    index = {w: i for i, w in enumerate(words)}
    unit = kv.vectors[: len(words)].astype(np.float32)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    total, correct, per_section = 0, 0, {}
    covered_all = 0
    for name, questions in sections.items():
        qs = [tuple(w.lower() for w in q) if lowercase else tuple(q) for q in questions]
        total += len(qs)
        ids = np.array([[index[w] for w in q] for q in qs if all(w in index for w in q)], dtype=np.int64)
        if ids.size == 0:
            per_section[name] = float("nan")
            continue
        right = 0
        for s in range(0, len(ids), batch_size):
            chunk = ids[s:s + batch_size]                                   # (B, 4)
            target = unit[chunk[:, 1]] - unit[chunk[:, 0]] + unit[chunk[:, 2]]  # (B, d)
            scores = target @ unit.T                                        # (B, V)
            rows = np.arange(len(chunk))[:, None]
            scores[rows, chunk[:, :3]] = -np.inf                            # never answer a, b or c
            right += int((scores.argmax(axis=1) == chunk[:, 3]).sum())
        per_section[name] = right / len(ids)
        correct += right
        covered_all += len(ids)
    if total == 0:
        raise ValueError("no analogy questions given")
    acc = correct / covered_all if covered_all else float("nan")
    return {"accuracy": acc, "correct": correct, "covered": covered_all, "total": total, "sections": per_section}


def evaluate(kv: "KeyedVectors", *, similarity: dict[str, Sequence] | None = None,
             analogies: dict[str, Sequence] | None = None) -> dict[str, dict[str, Any]]:
    """Evaluate any word vectors with one code path: word similarity and analogies.

    By default uses the bundled ``wordsim353`` and ``simlex999`` (Spearman, with the number
    of covered pairs) and ``questions_words`` (3CosAdd accuracy over covered questions).
    Returns ``{"wordsim353": {...}, "simlex999": {...}, "analogy": {...}}``.

    Example::

        >>> sorted(evaluate(kv)["wordsim353"])      # the Spearman over `covered` of `total` pairs
        ['covered', 'spearman', 'total']
    """
    if similarity is None:
        similarity = {"wordsim353": data.load("wordsim353"), "simlex999": data.load("simlex999")}
    if analogies is None:
        analogies = data.load("questions_words")
    out: dict[str, dict[str, Any]] = {name: similarity_spearman(kv, pairs) for name, pairs in similarity.items()}
    out["analogy"] = analogy_accuracy(kv, analogies)
    return out


def format_evaluation(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """A text table of ``{vector set name: evaluate(...)}``, one row per vector set."""
    width = max([22, *map(len, results)])                  # the longest name sets the column
    lines = [f"{'vectors':<{width}} {'wordsim353 (pairs)':>18} {'simlex999 (pairs)':>18} {'analogy (questions)':>22}"]
    for name, r in results.items():
        ws, sl, an = r["wordsim353"], r["simlex999"], r["analogy"]
        lines.append(f"{name:<{width}} {ws['spearman']:>8.3f} ({ws['covered']:>3}/{ws['total']}) "
                     f"{sl['spearman']:>8.3f} ({sl['covered']:>3}/{sl['total']}) "
                     f"{an['accuracy']:>8.3f} ({an['covered']:>5}/{an['total']})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- sentence vectors


def sentence_vectors(kv: "KeyedVectors", texts: Sequence[str], *,
                     tokenizer: Callable[[str], list[str]] = tokenize) -> "np.ndarray":
    """Mean-pool the word vectors of each text into one sentence vector: (len(texts), d).

    Words missing from ``kv`` are skipped; a text with no known word gets the zero vector
    (check ``known_fraction`` if that matters). A classifier needs one fixed-size vector
    per sentence, whatever its length: this is the simplest such pooling.

    Example::

        >>> sentence_vectors(kv, ["a fine film", "dull"]).shape
        (2, 100)
    """
    import numpy as np

    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string (wrap it: [text])")
    if len(texts) == 0:
        raise ValueError("no texts given")
    out = np.zeros((len(texts), kv.vector_size), dtype=np.float32)
    for n, text in enumerate(texts):
        rows = [kv.key_to_index[t] for t in tokenizer(text) if t in kv.key_to_index]
        if rows:
            out[n] = kv.vectors[rows].mean(axis=0)
    return out


def known_fraction(kv: "KeyedVectors", texts: Sequence[str], *,
                   tokenizer: Callable[[str], list[str]] = tokenize) -> float:
    """The fraction of the tokens of ``texts`` that have a vector in ``kv``."""
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string (wrap it: [text])")
    tokens = [t for text in texts for t in tokenizer(text)]
    if not tokens:
        raise ValueError("the texts have no tokens")
    return sum(t in kv.key_to_index for t in tokens) / len(tokens)


# --------------------------------------------------------------------------- the course's GloVe

@dataclass(frozen=True)
class GloveConfig:
    """The settings of the course's GloVe run (``course_glove``): the text and its counts,
    then the training (Adagrad on the weighted least-squares loss, ``train_glove``).

    ``articles`` of the Wikipedia sample (None: all of it), words seen at least ``min_count``
    times, a window of ``window`` words each side, and ``sample``: word2vec's subsampling
    before counting, the course's variant (expected counts, see ``subsampled_cooccurrence``;
    None gives GloVe as published). Then ``dim``-dimensional vectors, ``epochs`` passes in
    batches of ``batch_size`` pairs at Adagrad rate ``lr`` with its accumulator starting at
    ``initial_accumulator``, and the weighting ``f(x) = min(1, (x / x_max) ** alpha)``.
    Checked when made; ``GLOVE_FULL`` and ``GLOVE_QUICK`` are the lesson's two sizes::

        dataclasses.replace(GLOVE_FULL, window=2)          # a changed copy, checked again
    """

    articles: int | None = None
    min_count: int = 5
    window: int = 10
    sample: float | None = 1e-4
    dim: int = 100
    epochs: int = 10
    batch_size: int = 16384
    lr: float = 0.3
    x_max: float = 10.0
    alpha: float = 0.75
    initial_accumulator: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("min_count", "window", "dim", "epochs", "batch_size"):
            check_int(getattr(self, name), name, minimum=1)
        if self.articles is not None:
            check_int(self.articles, "articles", minimum=1)
        if self.sample is not None:
            check_number(self.sample, "sample", low=0, low_open=True)
        for name in ("lr", "x_max", "alpha"):
            check_number(getattr(self, name), name, low=0, low_open=True)
        check_number(self.initial_accumulator, "initial_accumulator", low=0)
        check_int(self.seed, "seed")


#: The lesson's GloVe at full size. x_max = 10, not the paper's 100: in ~480k tokens few pairs
#: co-occur 100 times (the reference code's demo on the 17 M-word text8 corpus uses 10 as well).
#: Adagrad's accumulator starts at 1, as in the reference glove.c. benchmarks/word_vectors.py
#: measures the plain and the subsampled counts over several seeds.
GLOVE_FULL = GloveConfig()
#: Quick mode: 12 articles, 50 dimensions.
GLOVE_QUICK = GloveConfig(articles=12, dim=50, epochs=8, batch_size=4096, lr=0.2)


def glove_settings(quick: bool | None = None, **overrides: Any) -> GloveConfig:
    """The settings ``course_glove`` uses: ``GLOVE_QUICK`` in quick mode (or ``quick=True``),
    else ``GLOVE_FULL``, with ``overrides`` applied (an unknown name raises ``TypeError``)."""
    base = GLOVE_QUICK if (config.is_quick() if quick is None else quick) else GLOVE_FULL
    unknown = set(overrides) - set(asdict(base))
    if unknown:
        raise TypeError(f"unknown GloVe settings {sorted(unknown)}; known: {sorted(asdict(base))}")
    return replace(base, **overrides)


def _course_glove_paths(settings: GloveConfig) -> tuple[Path, Path, Path]:
    name, folder = f"glove-{key(asdict(settings))}", config.cache_dir("vectors")
    return folder / f"{name}.npy", folder / f"{name}.vocab.txt", folder / f"{name}.json"


def course_glove_info(*, quick: bool | None = None, **overrides: Any) -> dict[str, Any]:
    """What the cached ``course_glove`` run recorded: ``settings``, per-epoch ``losses``,
    training ``seconds`` and ``vocab_size``. Raises ``FileNotFoundError`` before the first run."""
    _, _, meta_path = _course_glove_paths(glove_settings(quick, **overrides))
    if not meta_path.exists():
        raise FileNotFoundError(f"no cached GloVe run at {meta_path}: call course_glove() with the same settings first")
    return json.loads(meta_path.read_text())


def course_glove(*, quick: bool | None = None, progress: bool = True, **overrides: Any) -> "KeyedVectors":
    """GloVe vectors trained on the course's Wikipedia corpus with the lesson's settings.

    The first call trains (about a minute or two at full size on a laptop CPU) and stores
    the vectors in ``config.cache_dir("vectors")`` as ``.npy`` plus a vocabulary text file,
    named by a hash of the settings; later calls load them instantly. Quick mode (or
    ``quick=True``) uses a smaller corpus and model. ``overrides`` change single settings
    (see ``GloveConfig``).

    Example::

        >>> kv = vectors.course_glove()
        >>> kv.most_similar("king", topn=3)
    """
    import numpy as np

    settings = glove_settings(quick, **overrides)
    vec_path, vocab_path, meta_path = _course_glove_paths(settings)
    if vec_path.exists() and vocab_path.exists() and meta_path.exists():
        words = vocab_path.read_text(encoding="utf-8").split("\n")
        return to_keyed_vectors(words, np.load(vec_path, allow_pickle=False))

    s = settings
    docs = wiki_corpus(limit=s.articles)
    vocab = build_vocab(docs, min_count=s.min_count)
    X = glove_cooccurrence(encode(docs, vocab), vocab, window=s.window, sample=s.sample)
    result = train_glove(X, dim=s.dim, epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, x_max=s.x_max,
                         alpha=s.alpha, initial_accumulator=s.initial_accumulator, seed=s.seed, progress=progress)
    atomic_write(meta_path, lambda p: p.write_text(json.dumps(
        {"settings": asdict(s), "losses": result.losses, "seconds": result.seconds, "vocab_size": len(vocab),
         "nnz": int(X.nnz)}, indent=1)))
    atomic_write(vocab_path, lambda p: p.write_text("\n".join(vocab.words), encoding="utf-8"))
    atomic_write(vec_path, lambda p: np.save(open(p, "wb"), result.vectors, allow_pickle=False))
    return to_keyed_vectors(vocab.words, result.vectors)
