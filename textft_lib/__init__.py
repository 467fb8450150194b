"""textft_lib: the helper library of the textft course.

Modules, one job each (import the one you need; nothing heavy loads at package import):

- ``config``: quick/offline mode, device, seeding, cache and asset paths
- ``data``: the catalogue of corpora and datasets, offline first
- ``cache``: cache keys from settings, atomic files and folders (everything trained once)
- ``text``, ``bpe``: preprocessing and byte-level BPE (lesson 01)
- ``vectors``: co-occurrence counts, GloVe, evaluation (lesson 02)
- ``word2vec``: skip-gram with negative sampling in PyTorch (lesson 02)
- ``attention``: the attention formula, masks, multi-head attention (lesson 03);
  ``attention_checks``: its input checks, shared with the kernels
- ``kernels``: the fused attention kernel in Triton (lesson 04)
- ``transformer``, ``train``: the Transformer and the training loop (lesson 05)
- ``gpt``: a decoder-only Transformer, its key/value cache, sampling, export to GPT-2
  (lesson 08); ``llama``: RMSNorm, RoPE, SwiGLU, grouped-query attention, a Llama decoder
- ``corpus``: the pretraining corpora, from the bundled Wikipedia sample to an offline mix
  of about 10 M words (lesson 06)
- ``bert``: a package: the MLM model, masking, Hugging Face conversion, pretraining (lesson 06)
- ``metrics``, ``baselines``, ``encoding``, ``classifier``, ``finetuning``: measuring,
  baselines, tokenizing for, using and fine-tuning a text classifier (lesson 07); ``classify``
  re-exports them all
- ``pretrained``, ``lora``: real pretrained checkpoints, LoRA (lesson 07)
- ``carriers``: third-party files fetched from packages that carry them (sha256 checked,
  never imported)
- ``adapt``: domain-adaptive pretraining on a task's unlabelled text (appendix A1)
"""

__version__ = "0.1.0"
