"""BERT: masked-language-model pretraining, and conversion to and from ``transformers`` (lesson 06).

One module per job: ``model`` (the network), ``mlm`` (blocks, masking, the unigram baseline,
evaluation), ``convert`` (to and from ``transformers``), ``pretraining`` (settings, ``pretrain``,
``course_bert``), ``probing`` (``fill_mask``), ``head_start`` (a start that helps a small
model). Every name is also here: ``bert.make_blocks``, ``bert.BertForMLM``.

Pieces, in the order the lesson builds them:

* **data**: ``make_blocks`` cuts tokenized articles into ``[CLS] ... [SEP]`` blocks;
* **masking**: ``mask_tokens`` and ``MLMCollator`` choose 15% of the real (non-special)
  tokens; of those 80% become ``[MASK]``, 10% a random token, 10% stay; labels are the
  original ids there and -100 (ignored by the loss) everywhere else;
* **baseline**: ``unigram_log_probs`` / ``unigram_loss``, the loss of guessing every
  masked token from word frequencies alone, the bar pretraining must clear;
* **model**: ``BertConfig``, ``BertEmbeddings`` (token + position + segment, LayerNorm,
  dropout), ``BertModel`` (embeddings + ``textft_lib.transformer`` post-LN encoder
  layers), ``BertForMLM`` (``BertModel`` + an MLM head whose decoder is the token
  embedding matrix, tied);
* **conversion**: ``hf_name`` / ``our_name`` map parameter names both ways;
  ``to_transformers`` / ``from_transformers`` and ``save_pretrained`` /
  ``load_pretrained`` move weights to and from ``transformers.BertForMaskedLM``;
* **a head start**: ``init_offset_heads`` (every attention head starts looking at a fixed
  neighbour) and ``init_output_bias`` (the output starts at the word frequencies);
  ``new_model`` applies them when ``PretrainConfig.init == "offset_heads"``;
* **training**: ``evaluate_mlm`` (with the loss split by what the input showed),
  ``pretrain`` (on ``textft_lib.train.fit``) and ``course_bert()``, the cached pretrained
  model that lesson 07 fine-tunes;
* **using it**: ``fill_mask`` (the top guesses for a blank) and ``mask_word_scores`` (a
  zero-shot probe: how likely chosen words are in the blank of a template).

Example::

    import torch
    from textft_lib import bert
    cfg = bert.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=4, intermediate_size=64, max_position_embeddings=16)
    model = bert.BertForMLM(cfg)
    ids = torch.randint(5, 100, (2, 10))                 # (B, L)
    logits = model(ids)                                  # (2, 10, 100)
    hidden = model.bert(ids)                             # (2, 10, 32): what a classifier builds on
"""

from __future__ import annotations

from textft_lib.bert.model import (
    IGNORE_INDEX,
    BertConfig,
    BertEmbeddings,
    BertModel,
    MLMHead,
    BertForMLM,
)
from textft_lib.bert.mlm import (
    make_blocks,
    pack_blocks,
    make_blocks_from_ids,
    mask_tokens,
    MLMCollator,
    unigram_log_probs,
    unigram_loss,
    fixed_mask_batches,
    evaluate_mlm,
    unigram_baseline,
)
from textft_lib.bert.convert import (
    NAME_MAP,
    HF_TIED,
    hf_name,
    our_name,
    to_hf_state_dict,
    from_hf_state_dict,
    to_transformers,
    from_transformers,
    check_tokenizer,
    save_pretrained,
    load_pretrained,
)
from textft_lib.bert.head_start import (
    init_offset_heads,
    init_output_bias,
)
from textft_lib.bert.probing import (
    fill_mask,
    mask_word_scores,
)
from textft_lib.bert.pretraining import (
    MLMDataConfig,
    PretrainConfig,
    INITS,
    HEAD_START_FULL,
    HEAD_START_QUICK,
    LESSON_FULL,
    LESSON_GPU,
    LESSON_QUICK,
    head_start_settings,
    lesson_settings,
    PretrainData,
    prepare_data,
    training_texts,
    evenly_spaced,
    new_model,
    score_held_out,
    mlm_loss_fn,
    MLMObjective,
    pretrain,
    objective_loss_fn,
    course_bert,
)

__all__ = [
    "IGNORE_INDEX",
    "BertConfig",
    "BertEmbeddings",
    "BertModel",
    "MLMHead",
    "BertForMLM",
    "make_blocks",
    "pack_blocks",
    "make_blocks_from_ids",
    "mask_tokens",
    "MLMCollator",
    "unigram_log_probs",
    "unigram_loss",
    "fixed_mask_batches",
    "evaluate_mlm",
    "unigram_baseline",
    "NAME_MAP",
    "HF_TIED",
    "hf_name",
    "our_name",
    "to_hf_state_dict",
    "from_hf_state_dict",
    "to_transformers",
    "from_transformers",
    "check_tokenizer",
    "save_pretrained",
    "load_pretrained",
    "init_offset_heads",
    "init_output_bias",
    "fill_mask",
    "mask_word_scores",
    "MLMDataConfig",
    "PretrainConfig",
    "INITS",
    "HEAD_START_FULL",
    "HEAD_START_QUICK",
    "LESSON_FULL",
    "LESSON_GPU",
    "LESSON_QUICK",
    "head_start_settings",
    "lesson_settings",
    "PretrainData",
    "prepare_data",
    "training_texts",
    "evenly_spaced",
    "new_model",
    "score_held_out",
    "mlm_loss_fn",
    "MLMObjective",
    "pretrain",
    "objective_loss_fn",
    "course_bert",
]
