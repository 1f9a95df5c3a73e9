#include "train/cli/run_config.h"

#include <limits>
#include <set>

#include "tensor/device.h"
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

DataConfig read_data_config(ConfigReader& r, const ConfigDocument& document, const std::string& prefix,
                            DataConfig d) {
  d.path = r.string(prefix + ".path", d.path);
  d.text_column = r.string(prefix + ".text_column", d.text_column);
  d.text_pair_column = r.string(prefix + ".text_pair_column", d.text_pair_column);
  d.label_column = r.string(prefix + ".label_column", d.label_column);
  d.labels = r.strings(prefix + ".labels", d.labels);
  d.split = r.numbers(prefix + ".split", d.split);
  if (d.split.size() != 3 || d.split[0] <= 0 || d.split[1] <= 0 || d.split[2] <= 0)
    throw FormatError(document.where(prefix + ".split") + ": expected three positive fractions [train, validation, test]");
  d.stratified = r.boolean(prefix + ".stratified", d.stratified);
  d.seed = static_cast<uint64_t>(r.integer(prefix + ".seed", static_cast<int64_t>(d.seed), 0));
  d.max_examples = r.integer(prefix + ".max_examples", d.max_examples, 0);
  return d;
}

RunConfig read_run_config(const ConfigDocument& document) {
  ConfigReader r(document);
  RunConfig c;

  ModelConfig& m = c.model;
  m.type = r.choice("model.type", m.type, {"bert", "gru", "gru_forecaster"});
  m.path = r.string("model.path", m.path);
  m.pretrained = r.boolean("model.pretrained", m.pretrained);
  if (m.type == "bert") m.pooling = r.choice("model.pooling", m.pooling, {"cls", "mean"});
  else if (m.type == "gru") m.pooling = r.choice("model.pooling", "last", {"last", "mean", "max", "attention"});
  else m.pooling = r.choice("model.pooling", "last", {"last"});
  m.max_length = r.integer("model.max_length", m.max_length, 3, 512);
  m.dropout = optional_number(r, "model.dropout", 0.0, 0.99);
  m.gru_hidden = r.integer("model.gru_hidden", m.gru_hidden, 1, 1 << 16);
  m.gru_layers = r.integer("model.gru_layers", m.gru_layers, 1, 16);
  m.gru_bidirectional = r.boolean("model.gru_bidirectional", m.gru_bidirectional);
  m.gru_embeddings = r.choice("model.gru_embeddings", m.gru_embeddings, {"bert", "random", "file"});
  m.gru_embedding_dim = r.integer("model.gru_embedding_dim", m.gru_embedding_dim, 1, 1 << 16);
  m.word_vectors = r.string("model.word_vectors", m.word_vectors);
  m.word_vectors_oov = r.choice("model.word_vectors_oov", m.word_vectors_oov, {"zeros", "random_normal", "mean"});
  m.freeze_embeddings = r.boolean("model.freeze_embeddings", m.freeze_embeddings);
  if (m.type == "gru" && m.gru_embeddings == "file" && m.word_vectors.empty())
    throw FormatError(document.where("model.word_vectors") + ": model.gru_embeddings is file; name the word-vector "
                      "file (word2vec text or binary, GloVe text)");

  c.data = read_data_config(r, document, "data", c.data);

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
  if (m.type == "gru_forecaster") t.metric_for_best = r.choice("train.metric_for_best", "rmse", {"rmse", "mae", "mse", "loss"});
  else t.metric_for_best = r.choice("train.metric_for_best", t.metric_for_best, {"accuracy", "macro_f1", "loss"});
  t.eval_every_steps = r.integer("train.eval_every_steps", t.eval_every_steps, 0);
  t.seed = static_cast<uint64_t>(r.integer("train.seed", static_cast<int64_t>(t.seed), 0));
  t.progress = r.boolean("train.progress", t.progress);
  t.mixed_precision = r.choice("train.mixed_precision", t.mixed_precision, {"none", "bf16", "f16"});
  t.device = r.string("train.device", t.device);
  try {
    parse_device(t.device);
  } catch (const ValueError& e) {
    throw FormatError(document.where("train.device") + ": " + e.what());
  }

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

  c.task.name = r.string("task.name", c.task.name);
  c.task.loss_weight = r.number("task.loss_weight", c.task.loss_weight, 0.0, kInf);
  if (document.json().contains("tasks") && !document.json()["tasks"].is_array())
    throw FormatError(document.where("tasks") + ": expected an array of tasks ({name, loss_weight, data})");
  const size_t n_tasks = document.json().contains("tasks") ? document.json()["tasks"].size() : 0;
  if (n_tasks == 0) r.accept("tasks");  // [] (as config.json records a single-task run)
  // "domain" and "target" name domain adaptation's metrics (domain.accuracy, target.accuracy).
  const std::set<std::string> reserved{"domain", "target"};
  if (reserved.count(c.task.name) || c.task.name.empty() || c.task.name.find_first_of(". ") != std::string::npos)
    throw FormatError(document.where("task.name") + ": a task name without dots or spaces, other than domain and target");
  std::set<std::string> task_names{c.task.name};
  for (size_t i = 0; i < n_tasks; ++i) {
    const std::string key = "tasks." + std::to_string(i);
    if (!document.json()["tasks"][i].is_object())
      throw FormatError(document.where(key) + ": expected an object {name, loss_weight, data}");
    TaskConfig task;
    task.name = r.string(key + ".name", "");
    if (task.name.empty() || task.name.find_first_of(". ") != std::string::npos || reserved.count(task.name))
      throw FormatError(document.where(key + ".name") + ": each task needs a name without dots or spaces, other "
                        "than domain and target");
    if (!task_names.insert(task.name).second)
      throw FormatError(document.where(key + ".name") + ": task name \"" + task.name + "\" is used twice (task.name, tasks)");
    task.loss_weight = r.number(key + ".loss_weight", task.loss_weight, 0.0, kInf);
    task.data = read_data_config(r, document, key + ".data", DataConfig{});
    c.tasks.push_back(std::move(task));
  }

  DomainAdaptationConfig& da = c.domain_adaptation;
  da.enabled = r.boolean("domain_adaptation.enabled", da.enabled);
  da.path = r.string("domain_adaptation.path", da.path);
  da.text_column = r.string("domain_adaptation.text_column", da.text_column);
  da.label_column = r.string("domain_adaptation.label_column", da.label_column);
  da.loss_weight = r.number("domain_adaptation.loss_weight", da.loss_weight, 0.0, kInf);
  da.lambda = r.number("domain_adaptation.lambda", da.lambda, 0.0, kInf);
  da.lambda_schedule = r.choice("domain_adaptation.lambda_schedule", da.lambda_schedule, {"dann", "constant"});
  da.max_examples = r.integer("domain_adaptation.max_examples", da.max_examples, 0);
  if (da.enabled && da.path.empty())
    throw FormatError(document.where("domain_adaptation.path") + ": domain adaptation needs the target domain's texts");

  ForecastConfig& f = c.forecast;
  f.column = r.string("forecast.column", f.column);
  f.window = r.integer("forecast.window", f.window, 1, 1 << 20);
  f.horizon = r.integer("forecast.horizon", f.horizon, 1, 1 << 16);
  f.stride = r.integer("forecast.stride", f.stride, 1, 1 << 20);
  f.normalize = r.choice("forecast.normalize", f.normalize, {"train", "window"});
  f.init_from = r.string("forecast.init_from", f.init_from);

  c.output_dir = r.string("output_dir", c.output_dir);
  c.overwrite = r.boolean("overwrite", c.overwrite);

  const bool text = c.model.type != "gru_forecaster";
  if (!text && (n_tasks > 0 || da.enabled || c.lora.enabled || c.augment.copies > 0))
    throw FormatError(document.where("model.type") + ": a gru_forecaster run has one series; tasks, domain_adaptation, "
                      "lora and augment are for text models");
  if (!text && c.strategy.type != "full" && c.strategy.type != "last_n" && c.strategy.type != "feature_extraction")
    throw FormatError(document.where("strategy.type") + ": a gru_forecaster trains with full, last_n or "
                      "feature_extraction (the head alone)");
  if ((n_tasks > 0 || da.enabled) && c.strategy.type == "feature_extraction")
    throw FormatError(document.where("strategy.type") + ": tasks and domain_adaptation train the shared encoder; "
                      "feature_extraction freezes it");
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
  auto data_json = [](const DataConfig& d) {
    return json{{"path", d.path}, {"text_column", d.text_column}, {"text_pair_column", d.text_pair_column},
                {"label_column", d.label_column}, {"labels", d.labels}, {"split", d.split},
                {"stratified", d.stratified}, {"seed", d.seed}, {"max_examples", d.max_examples}};
  };
  json tasks = json::array();
  for (const auto& t : c.tasks) tasks.push_back({{"name", t.name}, {"loss_weight", t.loss_weight}, {"data", data_json(t.data)}});
  json class_weights = c.train.class_weights == "values" ? json(c.train.class_weight_values) : json(c.train.class_weights);
  return json{
      {"model",
       {{"type", c.model.type}, {"path", c.model.path}, {"pretrained", c.model.pretrained},
        {"pooling", c.model.pooling}, {"max_length", c.model.max_length}, {"dropout", optional(c.model.dropout)},
        {"gru_hidden", c.model.gru_hidden}, {"gru_layers", c.model.gru_layers},
        {"gru_bidirectional", c.model.gru_bidirectional}, {"gru_embeddings", c.model.gru_embeddings},
        {"gru_embedding_dim", c.model.gru_embedding_dim}, {"word_vectors", c.model.word_vectors},
        {"word_vectors_oov", c.model.word_vectors_oov}, {"freeze_embeddings", c.model.freeze_embeddings}}},
      {"data", data_json(c.data)},
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
        {"seed", c.train.seed}, {"progress", c.train.progress}, {"mixed_precision", c.train.mixed_precision},
         {"device", c.train.device}}},
      {"lora",
       {{"enabled", c.lora.enabled}, {"rank", c.lora.rank}, {"alpha", c.lora.alpha}, {"dropout", c.lora.dropout},
        {"targets", c.lora.targets}}},
      {"augment",
       {{"copies", c.augment.copies}, {"swap", c.augment.swap}, {"insert", c.augment.insert},
        {"delete", c.augment.delete_p}, {"seed", c.augment.seed}}},
      {"task", {{"name", c.task.name}, {"loss_weight", c.task.loss_weight}}},
      {"tasks", tasks},
      {"domain_adaptation",
       {{"enabled", c.domain_adaptation.enabled}, {"path", c.domain_adaptation.path},
        {"text_column", c.domain_adaptation.text_column}, {"label_column", c.domain_adaptation.label_column},
        {"loss_weight", c.domain_adaptation.loss_weight}, {"lambda", c.domain_adaptation.lambda},
        {"lambda_schedule", c.domain_adaptation.lambda_schedule}, {"max_examples", c.domain_adaptation.max_examples}}},
      {"forecast",
       {{"column", c.forecast.column}, {"window", c.forecast.window}, {"horizon", c.forecast.horizon},
        {"stride", c.forecast.stride}, {"normalize", c.forecast.normalize}, {"init_from", c.forecast.init_from}}},
      {"output_dir", c.output_dir},
      {"overwrite", c.overwrite},
  };
}

}  // namespace graft::cli
