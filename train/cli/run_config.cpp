#include "train/cli/run_config.h"

#include <limits>

#include "tensor/error.h"

namespace graft::cli {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::optional<double> optional_number(ConfigReader& r, const std::string& key, double min, double max) {
  if (!r.has(key)) {
    r.accept(key);  // an explicit null means "unset" too
    return std::nullopt;
  }
  return r.number(key, 0.0, min, max);
}

}  // namespace

RunConfig read_run_config(const ConfigDocument& document) {
  ConfigReader r(document);
  RunConfig c;

  ModelConfig& m = c.model;
  m.type = r.choice("model.type", m.type, {"bert", "gru"});
  m.path = r.string("model.path", m.path);
  m.pretrained = r.boolean("model.pretrained", m.pretrained);
  if (m.type == "bert") m.pooling = r.choice("model.pooling", m.pooling, {"cls", "mean"});
  else m.pooling = r.choice("model.pooling", "last", {"last", "mean", "max", "attention"});
  m.max_length = r.integer("model.max_length", m.max_length, 3, 512);
  m.dropout = optional_number(r, "model.dropout", 0.0, 0.99);
  m.gru_hidden = r.integer("model.gru_hidden", m.gru_hidden, 1, 1 << 16);
  m.gru_layers = r.integer("model.gru_layers", m.gru_layers, 1, 16);
  m.gru_bidirectional = r.boolean("model.gru_bidirectional", m.gru_bidirectional);
  m.gru_embeddings = r.choice("model.gru_embeddings", m.gru_embeddings, {"bert", "random"});
  m.gru_embedding_dim = r.integer("model.gru_embedding_dim", m.gru_embedding_dim, 1, 1 << 16);

  DataConfig& d = c.data;
  d.path = r.string("data.path", d.path);
  d.text_column = r.string("data.text_column", d.text_column);
  d.text_pair_column = r.string("data.text_pair_column", d.text_pair_column);
  d.label_column = r.string("data.label_column", d.label_column);
  d.labels = r.strings("data.labels", d.labels);
  d.split = r.numbers("data.split", d.split);
  if (d.split.size() != 3 || d.split[0] <= 0 || d.split[1] <= 0 || d.split[2] <= 0)
    throw FormatError(document.where("data.split") + ": expected three positive fractions [train, validation, test]");
  d.stratified = r.boolean("data.stratified", d.stratified);
  d.seed = static_cast<uint64_t>(r.integer("data.seed", static_cast<int64_t>(d.seed), 0));
  d.max_examples = r.integer("data.max_examples", d.max_examples, 0);

  StrategyConfig& s = c.strategy;
  s.type = r.choice("strategy.type", s.type, {"feature_extraction", "last_n", "full", "gradual_unfreezing"});
  s.last_n = r.integer("strategy.last_n", s.last_n, 0);
  s.layer_lr_decay = r.number("strategy.layer_lr_decay", s.layer_lr_decay, 0.0, 1.0);
  s.head_lr = optional_number(r, "strategy.head_lr", 0.0, kInf);

  OptimConfig& o = c.optim;
  o.name = r.choice("optim.name", o.name, {"adamw", "adam", "sgd"});
  o.lr = r.number("optim.lr", o.lr, 0.0, kInf);
  o.weight_decay = r.number("optim.weight_decay", o.weight_decay, 0.0, kInf);
  o.l1 = r.number("optim.l1", o.l1, 0.0, kInf);
  const std::vector<double> betas = r.numbers("optim.betas", {o.beta1, o.beta2});
  if (betas.size() != 2 || betas[0] < 0 || betas[0] >= 1 || betas[1] < 0 || betas[1] >= 1)
    throw FormatError(document.where("optim.betas") + ": expected [beta1, beta2], each in [0, 1)");
  o.beta1 = betas[0], o.beta2 = betas[1];
  o.eps = r.number("optim.eps", o.eps, 0.0, 1.0);
  o.momentum = r.number("optim.momentum", o.momentum, 0.0, 1.0);

  ScheduleConfig& sc = c.schedule;
  sc.type = r.choice("schedule.type", sc.type, {"linear", "cosine", "constant", "slanted_triangular", "one_cycle"});
  sc.warmup_ratio = r.number("schedule.warmup_ratio", sc.warmup_ratio, 0.0, 1.0);

  TrainConfig& t = c.train;
  t.epochs = r.integer("train.epochs", t.epochs, 1);
  t.max_steps = r.integer("train.max_steps", t.max_steps, -1);
  t.batch_size = r.integer("train.batch_size", t.batch_size, 1);
  t.eval_batch_size = r.integer("train.eval_batch_size", t.eval_batch_size, 1);
  t.accumulation_steps = r.integer("train.accumulation_steps", t.accumulation_steps, 1);
  t.max_grad_norm = r.number("train.max_grad_norm", t.max_grad_norm, 0.0, kInf);
  t.label_smoothing = r.number("train.label_smoothing", t.label_smoothing, 0.0, 1.0);
  if (r.has("train.class_weights") && document.json()["train"]["class_weights"].is_array()) {
    t.class_weight_values = r.numbers("train.class_weights", {});
    t.class_weights = "values";
  } else {
    t.class_weights = r.choice("train.class_weights", t.class_weights, {"none", "balanced"});
  }
  t.early_stopping_patience = r.integer("train.early_stopping_patience", t.early_stopping_patience, 0);
  t.restore_best = r.boolean("train.restore_best", t.restore_best);
  t.metric_for_best = r.choice("train.metric_for_best", t.metric_for_best, {"accuracy", "macro_f1", "loss"});
  t.eval_every_steps = r.integer("train.eval_every_steps", t.eval_every_steps, 0);
  t.seed = static_cast<uint64_t>(r.integer("train.seed", static_cast<int64_t>(t.seed), 0));
  t.progress = r.boolean("train.progress", t.progress);

  LoraConfig& l = c.lora;
  l.enabled = r.boolean("lora.enabled", l.enabled);
  l.rank = r.integer("lora.rank", l.rank, 1);
  l.alpha = r.number("lora.alpha", l.alpha, 0.0, kInf);
  l.dropout = r.number("lora.dropout", l.dropout, 0.0, 0.99);
  l.targets = r.strings("lora.targets", l.targets);

  AugmentConfig& a = c.augment;
  a.copies = r.integer("augment.copies", a.copies, 0, 16);
  a.swap = r.number("augment.swap", a.swap, 0.0, 1.0);
  a.insert = r.number("augment.insert", a.insert, 0.0, 1.0);
  a.delete_p = r.number("augment.delete", a.delete_p, 0.0, 1.0);
  a.seed = static_cast<uint64_t>(r.integer("augment.seed", static_cast<int64_t>(a.seed), 0));

  c.output_dir = r.string("output_dir", c.output_dir);
  c.overwrite = r.boolean("overwrite", c.overwrite);

  if (c.lora.enabled && c.model.type != "bert")
    throw FormatError(document.where("lora.enabled") + ": LoRA adapts a BERT model's Linear layers (model.type bert)");
  if (c.lora.enabled && c.strategy.type != "full")
    throw FormatError(document.where("lora.enabled") + ": LoRA decides what trains (the adapters and the head); "
                      "leave strategy.type at full");
  r.finish();
  return c;
}

nlohmann::json to_json(const RunConfig& c) {
  using nlohmann::json;
  auto optional = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  json class_weights = c.train.class_weights == "values" ? json(c.train.class_weight_values) : json(c.train.class_weights);
  return json{
      {"model",
       {{"type", c.model.type}, {"path", c.model.path}, {"pretrained", c.model.pretrained},
        {"pooling", c.model.pooling}, {"max_length", c.model.max_length}, {"dropout", optional(c.model.dropout)},
        {"gru_hidden", c.model.gru_hidden}, {"gru_layers", c.model.gru_layers},
        {"gru_bidirectional", c.model.gru_bidirectional}, {"gru_embeddings", c.model.gru_embeddings},
        {"gru_embedding_dim", c.model.gru_embedding_dim}}},
      {"data",
       {{"path", c.data.path}, {"text_column", c.data.text_column}, {"text_pair_column", c.data.text_pair_column},
        {"label_column", c.data.label_column}, {"labels", c.data.labels}, {"split", c.data.split},
        {"stratified", c.data.stratified}, {"seed", c.data.seed}, {"max_examples", c.data.max_examples}}},
      {"strategy",
       {{"type", c.strategy.type}, {"last_n", c.strategy.last_n}, {"layer_lr_decay", c.strategy.layer_lr_decay},
        {"head_lr", optional(c.strategy.head_lr)}}},
      {"optim",
       {{"name", c.optim.name}, {"lr", c.optim.lr}, {"weight_decay", c.optim.weight_decay}, {"l1", c.optim.l1},
        {"betas", {c.optim.beta1, c.optim.beta2}}, {"eps", c.optim.eps}, {"momentum", c.optim.momentum}}},
      {"schedule", {{"type", c.schedule.type}, {"warmup_ratio", c.schedule.warmup_ratio}}},
      {"train",
       {{"epochs", c.train.epochs}, {"max_steps", c.train.max_steps}, {"batch_size", c.train.batch_size},
        {"eval_batch_size", c.train.eval_batch_size}, {"accumulation_steps", c.train.accumulation_steps},
        {"max_grad_norm", c.train.max_grad_norm}, {"label_smoothing", c.train.label_smoothing},
        {"class_weights", class_weights}, {"early_stopping_patience", c.train.early_stopping_patience},
        {"restore_best", c.train.restore_best},
        {"metric_for_best", c.train.metric_for_best}, {"eval_every_steps", c.train.eval_every_steps},
        {"seed", c.train.seed}, {"progress", c.train.progress}}},
      {"lora",
       {{"enabled", c.lora.enabled}, {"rank", c.lora.rank}, {"alpha", c.lora.alpha}, {"dropout", c.lora.dropout},
        {"targets", c.lora.targets}}},
      {"augment",
       {{"copies", c.augment.copies}, {"swap", c.augment.swap}, {"insert", c.augment.insert},
        {"delete", c.augment.delete_p}, {"seed", c.augment.seed}}},
      {"output_dir", c.output_dir},
      {"overwrite", c.overwrite},
  };
}

}  // namespace graft::cli
