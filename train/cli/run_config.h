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
  // model.type: bert | gru (text classifiers) | gru_forecaster (the next values of a series; see forecast)
  std::string type = "bert";
  std::string path = "assets/all-MiniLM-L6-v2";    // model.path: a BERT folder (config.json, model.safetensors, vocab.txt)
  bool pretrained = true;                          // model.pretrained: false = same architecture, random weights
  std::string pooling = "mean";                    // model.pooling: bert: cls | mean; gru: last | mean | max | attention
  int64_t max_length = 128;                        // model.max_length: tokens per text, [CLS]/[SEP] included
  std::optional<double> dropout;                   // model.dropout: every dropout probability (BERT: hidden, attention, head)
  // GRU classifier (model.type = gru), on the BERT folder's WordPiece vocabulary:
  int64_t gru_hidden = 256;                        // model.gru_hidden
  int64_t gru_layers = 1;                          // model.gru_layers
  bool gru_bidirectional = true;                   // model.gru_bidirectional
  // model.gru_embeddings: bert (the BERT folder's word embeddings) | random | file (model.word_vectors)
  std::string gru_embeddings = "bert";
  int64_t gru_embedding_dim = 384;                 // model.gru_embedding_dim: for random embeddings
  // Pretrained word vectors (gru_embeddings = file): word2vec text or binary, or GloVe text, read
  // into the rows of the WordPiece tokens that are whole words in the file; the rest get the OOV fill.
  std::string word_vectors;                        // model.word_vectors: the file
  std::string word_vectors_oov = "random_normal";  // model.word_vectors_oov: zeros | random_normal | mean
  bool freeze_embeddings = false;                  // model.freeze_embeddings: the table does not train
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

// The primary task (the data section) in a multi-task run.
struct TaskInfo {
  std::string name = "main";  // task.name: its metrics are "<name>.accuracy", ... when there are other tasks
  double loss_weight = 1.0;   // task.loss_weight
};

// tasks[i]: one more task on the shared encoder, with its own head ("task_heads.<name>"), data and
// loss weight. Training batches mix the tasks' examples in proportion to their training sets; the
// loss is sum_t weight_t * (sum of task t's losses in the batch) / batch size. Validation runs each
// task on its own split; the metric for best is the mean over the tasks.
struct TaskConfig {
  std::string name;           // tasks[i].name
  double loss_weight = 1.0;   // tasks[i].loss_weight
  DataConfig data;            // tasks[i].data: the keys of the data section, same defaults
};

// Domain-adversarial training (DANN, Ganin et al. 2016): a domain classifier on the pooled features,
// behind a gradient reversal layer, learns to tell the source domain (data) from the target domain
// (unlabelled texts here); the reversed gradient pushes the encoder towards features it cannot tell
// apart. The target's labels, when the file has them, are only evaluated, never trained on.
struct DomainAdaptationConfig {
  bool enabled = false;               // domain_adaptation.enabled
  std::string path;                   // domain_adaptation.path: target-domain texts (CSV, TSV or JSONL)
  std::string text_column = "text";   // domain_adaptation.text_column
  std::string label_column;           // domain_adaptation.label_column: "" = unlabelled; else evaluated on its test part
  double loss_weight = 1.0;           // domain_adaptation.loss_weight: of the domain classifier's loss
  double lambda = 1.0;                // domain_adaptation.lambda: the reversal's strength (at the end, under dann)
  // domain_adaptation.lambda_schedule: dann (lambda * (2 / (1 + exp(-10 p)) - 1), p the fraction of
  // training done, as the paper) | constant
  std::string lambda_schedule = "dann";
  int64_t max_examples = 0;           // domain_adaptation.max_examples: > 0 keeps that many target texts
};

// model.type gru_forecaster: data.path is a table with one numeric column, read in file order as a
// series and split chronologically by data.split; windows of `window` values predict the next
// `horizon` values (z-scored with the training part's statistics, reported in the series' units).
struct ForecastConfig {
  std::string column = "value";  // forecast.column
  int64_t window = 24;           // forecast.window
  int64_t horizon = 1;           // forecast.horizon
  int64_t stride = 1;            // forecast.stride: of the training windows
  // forecast.normalize: train (z-score with the training part's mean and std) | window (each window
  // relative to its last value, scaled by the std of the training part's step-to-step changes: a
  // model that has seen one season still reads another)
  std::string normalize = "train";
  // forecast.init_from: a finished forecaster run's directory; its weights start this run (transfer
  // from another series). Its window may differ; hidden size, layers and horizon must agree.
  std::string init_from;
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
  // train.metric_for_best: accuracy | macro_f1 | loss (classifiers); rmse | mae | mse | loss (forecaster)
  std::string metric_for_best = "accuracy";
  int64_t eval_every_steps = 0;     // train.eval_every_steps: 0 = at epoch ends
  uint64_t seed = 0;                // train.seed: init of new weights, dropout, shuffling
  bool progress = true;             // train.progress
  // train.mixed_precision: none | bf16 | f16: GEMMs and attention in bf16/f16 with f32 master
  // weights (f16 with dynamic loss scaling); on the CPU emulated (rounded), so the numerics match
  std::string mixed_precision = "none";
  // train.device: cpu | cuda | cuda:N: where the model trains and evaluates (under mpirun with
  // NCCL each process takes the GPU of its local rank instead)
  std::string device = "cpu";
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
  TaskInfo task;
  std::vector<TaskConfig> tasks;            // tasks: [] = a single task
  DomainAdaptationConfig domain_adaptation;
  ForecastConfig forecast;
  std::string output_dir = "runs/default";  // output_dir: config.json, log.jsonl, checkpoints/, results.json
  bool overwrite = false;                   // overwrite: allow a directory that holds an earlier run
};

// Reads every key (defaults where absent), checks types, ranges and choices, and rejects unknown
// keys: FormatError naming file, line and field.
RunConfig read_run_config(const ConfigDocument& document);

// The keys of a data section under `prefix` ("data", "tasks.1.data"), defaults from `defaults`.
DataConfig read_data_config(ConfigReader& r, const ConfigDocument& document, const std::string& prefix,
                            DataConfig defaults);

// Every key with its value, defaults included (what the run directory records).
nlohmann::json to_json(const RunConfig& config);

}  // namespace graft::cli
