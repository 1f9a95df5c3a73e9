// What `graft finetune` runs: every setting of a fine-tuning run, with its default. A run config
// is JSON (train/cli/config.h reads it); each key below is "section.key", and the resolved config
// (every key, defaults filled in) is written to the run directory as config.json, so a run can be
// repeated from its own record. `graft defaults` prints every key with its default; the comments
// below say what each means.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/cli/config.h"

namespace graft::cli {

struct ModelConfig {
  std::string type = "bert";                       // model.type: bert | gru
  std::string path = "assets/all-MiniLM-L6-v2";    // model.path: a BERT folder (config.json, model.safetensors, vocab.txt)
  bool pretrained = true;                          // model.pretrained: false = same architecture, random weights
  std::string pooling = "mean";                    // model.pooling: bert: cls | mean; gru: last | mean | max | attention
  int64_t max_length = 128;                        // model.max_length: tokens per text, [CLS]/[SEP] included
  std::optional<double> dropout;                   // model.dropout: every dropout probability (BERT: hidden, attention, head)
  // GRU classifier (model.type = gru), on the BERT folder's WordPiece vocabulary:
  int64_t gru_hidden = 256;                        // model.gru_hidden
  int64_t gru_layers = 1;                          // model.gru_layers
  bool gru_bidirectional = true;                   // model.gru_bidirectional
  std::string gru_embeddings = "bert";             // model.gru_embeddings: bert (the BERT folder's word embeddings) | random
  int64_t gru_embedding_dim = 384;                 // model.gru_embedding_dim: for random embeddings
};

struct DataConfig {
  std::string path = "assets/rotten_tomatoes.csv";  // data.path: CSV, TSV or JSONL
  std::string text_column = "text";                 // data.text_column
  std::string text_pair_column;                     // data.text_pair_column: "" for single texts
  std::string label_column = "category";            // data.label_column
  std::vector<std::string> labels = {"fresh", "rotten"};  // data.labels: kept, in this id order; [] = all, sorted
  std::vector<double> split = {0.8, 0.1, 0.1};     // data.split: train, validation, test
  bool stratified = true;                           // data.stratified
  uint64_t seed = 42;                               // data.seed: the split's
  int64_t max_examples = 0;                         // data.max_examples: > 0 keeps a stratified subset first
};

struct StrategyConfig {
  // strategy.type: feature_extraction (frozen backbone, features cached, head trained) | last_n |
  // full | gradual_unfreezing (ULMFiT: one layer group per epoch from the top)
  std::string type = "full";
  int64_t last_n = 2;           // strategy.last_n: encoder layers trained under last_n
  double layer_lr_decay = 1.0;  // strategy.layer_lr_decay: layer k from the top gets lr * decay^k
  std::optional<double> head_lr;  // strategy.head_lr: the head's lr (default optim.lr)
};

struct OptimConfig {
  std::string name = "adamw";  // optim.name: adamw | adam | sgd
  double lr = 5e-5;            // optim.lr
  double weight_decay = 0.01;  // optim.weight_decay: none for biases and LayerNorm (the no-decay group)
  double l1 = 0.0;             // optim.l1
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // optim.betas [b1, b2], optim.eps
  double momentum = 0.9;       // optim.momentum (sgd)
};

struct ScheduleConfig {
  // schedule.type: linear | cosine | constant | slanted_triangular | one_cycle
  std::string type = "linear";
  double warmup_ratio = 0.1;   // schedule.warmup_ratio: of the total steps (linear, cosine, constant)
};

struct TrainConfig {
  int64_t epochs = 3;               // train.epochs
  int64_t max_steps = -1;           // train.max_steps: > 0 stops there
  int64_t batch_size = 32;          // train.batch_size
  int64_t eval_batch_size = 64;     // train.eval_batch_size
  int64_t accumulation_steps = 1;   // train.accumulation_steps
  double max_grad_norm = 1.0;       // train.max_grad_norm: 0 = no clipping
  double label_smoothing = 0.0;     // train.label_smoothing
  // train.class_weights: "none" | "balanced" (n / (C * n_c) over the training split) | [w0, w1, ...]
  std::string class_weights = "none";
  std::vector<double> class_weight_values;
  int64_t early_stopping_patience = 0;  // train.early_stopping_patience: evaluations; 0 = off
  bool restore_best = true;         // train.restore_best: end with the weights of the best validation
  std::string metric_for_best = "accuracy";  // train.metric_for_best: accuracy | macro_f1 | loss
  int64_t eval_every_steps = 0;     // train.eval_every_steps: 0 = at epoch ends
  uint64_t seed = 0;                // train.seed: init of new weights, dropout, shuffling
  bool progress = true;             // train.progress
};

struct LoraConfig {
  bool enabled = false;             // lora.enabled
  int64_t rank = 8;                 // lora.rank
  double alpha = 16.0;              // lora.alpha
  double dropout = 0.1;             // lora.dropout
  std::vector<std::string> targets = {"*.attention.self.query", "*.attention.self.value"};  // lora.targets
};

struct AugmentConfig {
  int64_t copies = 0;               // augment.copies: augmented copies per training example; 0 = off
  double swap = 0.1;                // augment.swap: EDA's alpha for random swap
  double insert = 0.1;              // augment.insert: alpha for random insertion
  double delete_p = 0.1;            // augment.delete: probability of deleting each word
  uint64_t seed = 0;                // augment.seed
};

struct RunConfig {
  ModelConfig model;
  DataConfig data;
  StrategyConfig strategy;
  OptimConfig optim;
  ScheduleConfig schedule;
  TrainConfig train;
  LoraConfig lora;
  AugmentConfig augment;
  std::string output_dir = "runs/default";  // output_dir: config.json, log.jsonl, checkpoints/, results.json
  bool overwrite = false;                   // overwrite: allow a directory that holds an earlier run
};

// Reads every key (defaults where absent), checks types, ranges and choices, and rejects unknown
// keys: FormatError naming file, line and field.
RunConfig read_run_config(const ConfigDocument& document);

// Every key with its value, defaults included (what the run directory records).
nlohmann::json to_json(const RunConfig& config);

}  // namespace graft::cli
