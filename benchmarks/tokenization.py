"""Benchmark: the course's byte-level BPE against Hugging Face `tokenizers` (BPE and WordPiece).

All three train on the same text (the bundled Wikipedia articles, markup filtered) with the
same vocabulary size (256 bytes + 8,000 merges by default) in one run, then encode the
whole corpus. The table reports training seconds, encoding throughput (MB of UTF-8 per
second, one Python thread for ours; `tokenizers` is Rust and may use every core in
`encode_batch`), tokens per whitespace-separated word, how many of our learned tokens the `tokenizers` BPE
also learned, and how our training time grows with the corpus (roughly linearly).

    python benchmarks/tokenization.py                  # full corpus, 8,000 merges
    python benchmarks/tokenization.py --merges 2000 --articles 20

Writes assets/benchmarks/tokenizers.json (device, versions, date, settings, results).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from textft_lib import config, data
from textft_lib.bpe import BPETokenizer


def train_hf_bpe(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def train_hf_wordpiece(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=["[UNK]"], show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merges", type=int, default=8000, help="BPE merges (vocab size = 256 + merges)")
    parser.add_argument("--articles", type=int, default=None, help="use only the first N Wikipedia articles")
    parser.add_argument("--repeats", type=int, default=3, help="encoding passes; the best one is reported")
    parser.add_argument("--scaling", type=float, nargs="*", default=[0.25, 0.5],
                        help="also train ours on these fractions of the articles (does time grow linearly?)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default assets/benchmarks/tokenizers.json)")
    args = parser.parse_args()

    texts = [a.text for a in data.load("wiki", limit=args.articles)]
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    n_words = sum(len(t.split()) for t in texts)
    vocab_size = 256 + args.merges
    print(f"corpus: {len(texts)} Wikipedia articles, {n_bytes / 1e6:.2f} MB, {n_words:,} words; "
          f"vocab size {vocab_size}")

    results = []

    # --- ours
    ours, train_s = timed(BPETokenizer().train, texts, vocab_size)
    # a fresh copy (empty word cache) for the first, "cold" pass; later passes reuse the cache
    fresh = BPETokenizer.load(ours.save(config.cache_dir("benchmarks") / "bpe_bench.json"))
    ids, cold_s = timed(fresh.encode_batch, texts)
    best_s = float("inf")
    for _ in range(args.repeats - 1):
        ids, s = timed(fresh.encode_batch, texts)
        best_s = min(best_s, s)
    n_tokens = sum(len(x) for x in ids)
    assert all(ours.decode(i) == t for i, t in zip(ids, texts)), "our BPE failed to round-trip the corpus"
    results.append({"tokenizer": "textft BPE (Python)", "vocab_size": ours.vocab_size, "train_s": train_s,
                    "encode_mb_s": n_bytes / 1e6 / cold_s,
                    "encode_mb_s_warm_cache": n_bytes / 1e6 / best_s if args.repeats > 1 else None,
                    "tokens": n_tokens, "tokens_per_word": n_tokens / n_words})

    # --- scaling: our training time on growing slices of the corpus (same number of merges)
    scaling = []
    for frac in args.scaling:
        part = texts[: max(1, round(frac * len(texts)))]
        _, secs = timed(BPETokenizer().train, part, vocab_size)
        scaling.append({"fraction": frac, "articles": len(part),
                        "mb": sum(len(t.encode("utf-8")) for t in part) / 1e6, "train_s": secs})

    # --- tokenizers: byte-level BPE and WordPiece
    for name, trainer in [("tokenizers BPE (Rust)", train_hf_bpe), ("tokenizers WordPiece (Rust)", train_hf_wordpiece)]:
        tok, train_s = timed(trainer, texts, vocab_size)
        encs, enc_s = timed(tok.encode_batch, texts)
        for _ in range(args.repeats - 1):
            encs, s = timed(tok.encode_batch, texts)
            enc_s = min(enc_s, s)
        n_tokens = sum(len(e.ids) for e in encs)
        results.append({"tokenizer": name, "vocab_size": tok.get_vocab_size(), "train_s": train_s,
                        "encode_mb_s": n_bytes / 1e6 / enc_s, "encode_mb_s_warm_cache": None,
                        "tokens": n_tokens, "tokens_per_word": n_tokens / n_words})
        if name.startswith("tokenizers BPE"):
            hf_bpe = tok

    # --- how much the two BPE vocabularies agree (same bytes, different pre-tokenizers and tie rules)
    byte_of = _gpt2_byte_decoder()
    hf_tokens = {bytes(byte_of[ch] for ch in t) for t in hf_bpe.get_vocab()}
    ours_tokens = set(ours.vocab.values())
    shared = len(hf_tokens & ours_tokens) / len(ours_tokens)

    header = f"{'tokenizer':<30}{'vocab':>7}{'train s':>9}{'encode MB/s':>13}{'tokens/word':>13}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['tokenizer']:<30}{r['vocab_size']:>7}{r['train_s']:>9.2f}{r['encode_mb_s']:>13.2f}"
              f"{r['tokens_per_word']:>13.3f}")
    warm = results[0]["encode_mb_s_warm_cache"]
    if warm:
        print(f"our encoder with a warm word cache: {warm:.2f} MB/s")
    print(f"tokens learned by both BPEs: {shared:.1%} of ours")
    full = {"fraction": 1.0, "articles": len(texts), "mb": n_bytes / 1e6, "train_s": results[0]["train_s"]}
    scaling.append(full)
    print("our training time against corpus size (same merges): " + ", ".join(
        f"{r['mb']:.2f} MB: {r['train_s']:.2f} s" for r in scaling))

    report = {
        "benchmark": "tokenizers",
        "device": f"cpu ({platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores)",
        "settings": {"corpus": "wiki", "articles": len(texts), "mb": n_bytes / 1e6, "words": n_words,
                     "merges": args.merges, "vocab_size": vocab_size, "repeats": args.repeats,
                     "words_are": "whitespace-separated", "encode": "cold cache for ours; best of repeats for tokenizers"},
        "results": results,
        "shared_bpe_tokens_fraction": shared,
        "ours_training_scaling": scaling,
    }
    out = args.out or config.assets_dir("benchmarks") / "tokenizers.json"
    config.write_benchmark(report, out)
    print(f"wrote {out}")


def _gpt2_byte_decoder() -> dict[str, int]:
    """GPT-2's map from the printable characters that byte-level tokenizers show back to bytes."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, n = {}, 0
    for b in range(256):
        if b in keep:
            chars[chr(b)] = b
        else:
            chars[chr(256 + n)] = b
            n += 1
    return chars


if __name__ == "__main__":
    main()
