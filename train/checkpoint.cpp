#include "train/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "autograd/grad_mode.h"
#include "nn/atomic_file.h"
#include "nn/safetensors.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace graft::train {

namespace {

constexpr const char* kModelPrefix = "model/";
constexpr const char* kOptimizerPrefix = "optimizer/";

nlohmann::json parse_metadata(const std::map<std::string, std::string>& metadata, const std::string& key,
                              const std::string& file) {
  auto it = metadata.find(key);
  if (it == metadata.end()) throw FormatError("checkpoint " + file + ": metadata has no '" + key + "' entry");
  try {
    return nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError("checkpoint " + file + ": metadata '" + key + "' is not valid JSON: " + e.what());
  }
}

// Copies of the live tensors, to put back if a later part of a load fails.
std::map<std::string, Tensor> snapshot(const std::map<std::string, Tensor>& state) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, tensor] : state) out[name] = tensor.clone();
  return out;
}

}  // namespace

void save_checkpoint(const std::filesystem::path& path, const nn::Module& model, const optim::Optimizer* optimizer,
                     const optim::LRScheduler* scheduler, const nlohmann::json& trainer_state) {
  std::map<std::string, Tensor> tensors;
  for (auto& [name, tensor] : model.state_dict()) tensors[kModelPrefix + name] = tensor;
  std::map<std::string, std::string> metadata{{"format", kCheckpointFormat},
                                              {"version", std::to_string(kCheckpointVersion)}};
  if (optimizer) {
    optim::Optimizer::State state = optimizer->state_dict();
    for (auto& [name, tensor] : state.tensors) tensors[kOptimizerPrefix + name] = tensor;
    metadata["optimizer"] = state.meta.dump();
  }
  if (scheduler) metadata["scheduler"] = scheduler->state_dict().dump();
  const Generator& generator = default_generator();
  metadata["rng"] = nlohmann::json{{"seed", generator.seed()}, {"offset", generator.offset()}}.dump();
  metadata["trainer"] = trainer_state.dump();
  nn::save_safetensors(path, tensors, metadata);
}

// Opens a checkpoint and checks that it is one (format and version in its metadata).
static nn::SafetensorsFile open_checkpoint(const std::filesystem::path& path) {
  const std::string file = path.string();
  if (!std::filesystem::exists(path)) throw IOError("checkpoint " + file + " does not exist");
  nn::SafetensorsFile reader = nn::SafetensorsFile::open(path);
  const auto& metadata = reader.metadata();
  auto format = metadata.find("format");
  if (format == metadata.end() || format->second != kCheckpointFormat) {
    throw FormatError("checkpoint " + file + ": not a graft checkpoint (no format=" + kCheckpointFormat +
                      " in its metadata)");
  }
  if (metadata.count("version") == 0 || metadata.at("version") != std::to_string(kCheckpointVersion)) {
    throw FormatError("checkpoint " + file + ": version " +
                      (metadata.count("version") ? metadata.at("version") : std::string("(none)")) +
                      " is not the supported " + std::to_string(kCheckpointVersion));
  }
  return reader;
}

nlohmann::json read_trainer_state(const std::filesystem::path& path) {
  nn::SafetensorsFile reader = open_checkpoint(path);
  return parse_metadata(reader.metadata(), "trainer", path.string());
}

nlohmann::json load_checkpoint(const std::filesystem::path& path, nn::Module& model, optim::Optimizer* optimizer,
                               optim::LRScheduler* scheduler, bool restore_rng) {
  const std::string file = path.string();
  // 1. Read and check the whole file before touching anything.
  nn::SafetensorsFile reader = open_checkpoint(path);
  const auto& metadata = reader.metadata();
  std::map<std::string, Tensor> model_state, optimizer_tensors;
  for (const std::string& name : reader.names()) {
    if (name.rfind(kModelPrefix, 0) == 0) model_state[name.substr(6)] = reader.load(name);
    else if (name.rfind(kOptimizerPrefix, 0) == 0) optimizer_tensors[name.substr(10)] = reader.load(name);
    else throw FormatError("checkpoint " + file + ": unexpected tensor '" + name + "'");
  }
  const nlohmann::json trainer = parse_metadata(metadata, "trainer", file);
  const nlohmann::json rng = parse_metadata(metadata, "rng", file);
  std::optional<nlohmann::json> optimizer_meta, scheduler_state;
  if (optimizer) {
    if (!metadata.count("optimizer")) throw ValueError("checkpoint " + file + " holds no optimizer state");
    optimizer_meta = parse_metadata(metadata, "optimizer", file);
  }
  if (scheduler) {
    if (!metadata.count("scheduler")) throw ValueError("checkpoint " + file + " holds no scheduler state");
    scheduler_state = parse_metadata(metadata, "scheduler", file);
  }
  if (!rng.is_object() || !rng.contains("seed") || !rng.contains("offset") || !rng["seed"].is_number_unsigned() ||
      !rng["offset"].is_number_unsigned()) {
    throw FormatError("checkpoint " + file + ": rng entry must hold unsigned 'seed' and 'offset'");
  }

  // 2. Apply in order, each part validating before it changes anything; roll back the earlier
  //    parts when a later one refuses.
  const auto model_backup = snapshot(model.state_dict());
  std::optional<optim::Optimizer::State> optimizer_backup;
  try {
    model.load_state_dict(model_state);  // strict: a checkpoint of another model is an error
    if (optimizer) {
      optimizer_backup = optimizer->state_dict();
      for (auto& [name, tensor] : optimizer_backup->tensors) tensor = tensor.clone();
      optimizer->load_state_dict({optimizer_tensors, *optimizer_meta});
    }
    if (scheduler) scheduler->load_state_dict(*scheduler_state);
  } catch (...) {
    model.load_state_dict(model_backup);
    if (optimizer_backup) optimizer->load_state_dict(*optimizer_backup);
    throw;
  }
  if (restore_rng) {
    Generator& generator = default_generator();
    generator.manual_seed(rng["seed"].get<uint64_t>());
    generator.set_offset(rng["offset"].get<uint64_t>());
  }
  return trainer;
}

// --- CheckpointManager ---

CheckpointManager::CheckpointManager(std::filesystem::path directory, int64_t keep_last)
    : directory_(std::move(directory)), keep_last_(keep_last) {
  if (keep_last < 1) throw ValueError("CheckpointManager: keep_last must be >= 1, got " + std::to_string(keep_last));
  std::error_code error;
  std::filesystem::create_directories(directory_, error);
  if (error) throw IOError("CheckpointManager: cannot create " + directory_.string() + ": " + error.message());
  const auto index = directory_ / "checkpoints.json";
  if (!std::filesystem::exists(index)) return;
  std::ifstream in(index);
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(in);
    for (const auto& item : json.at("checkpoints")) {
      Entry entry{item.at("step").get<int64_t>(), item.at("file").get<std::string>(), std::nullopt};
      if (item.contains("metric") && item["metric"].is_number()) entry.metric = item["metric"].get<double>();
      if (entry.file.find('/') != std::string::npos || entry.file.find("..") != std::string::npos) {
        throw FormatError("file name '" + entry.file + "' leaves the directory");
      }
      if (std::filesystem::exists(directory_ / entry.file)) entries_.push_back(entry);
    }
    if (json.contains("best") && json["best"].is_string()) {
      for (size_t i = 0; i < entries_.size(); ++i) {
        if (entries_[i].file == json["best"].get<std::string>()) best_ = i;
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw FormatError("CheckpointManager: " + index.string() + " is malformed: " + e.what());
  } catch (const FormatError& e) {
    throw FormatError("CheckpointManager: " + index.string() + ": " + e.what());
  }
}

static void write_index(const std::filesystem::path& directory, const std::vector<CheckpointManager::Entry>& entries,
                        std::optional<size_t> best) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& entry : entries) {
    nlohmann::json item{{"step", entry.step}, {"file", entry.file}};
    if (entry.metric) item["metric"] = *entry.metric;
    list.push_back(item);
  }
  nlohmann::json index{{"checkpoints", list}};
  if (best) index["best"] = entries[*best].file;
  nn::write_file_atomic(directory / "checkpoints.json", index.dump(2) + "\n");
}

std::filesystem::path CheckpointManager::save(int64_t step, const nn::Module& model, const optim::Optimizer* optimizer,
                                              const optim::LRScheduler* scheduler, const nlohmann::json& trainer_state,
                                              std::optional<double> metric, bool greater_is_better) {
  const std::string file = "checkpoint-" + std::to_string(step) + ".safetensors";
  save_checkpoint(directory_ / file, model, optimizer, scheduler, trainer_state);
  // The new list is built aside and committed only once its index is on disk.
  std::vector<Entry> entries;
  std::optional<std::string> best_file = best_ ? std::optional(entries_[*best_].file) : std::nullopt;
  for (const auto& entry : entries_) {
    if (entry.file != file) entries.push_back(entry);
    else if (!metric) metric = entry.metric;  // a re-save without a metric keeps the one it had
  }
  entries.push_back({step, file, metric});
  std::optional<size_t> best;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (best_file && entries[i].file == *best_file) best = i;
  }
  if (metric && std::isfinite(*metric)) {
    const bool better = !best || !entries[*best].metric ||
                        (greater_is_better ? *metric > *entries[*best].metric : *metric < *entries[*best].metric);
    if (better) best = entries.size() - 1;
  }
  // Rotate: keep the newest keep_last and the best.
  std::vector<Entry> kept;
  std::optional<size_t> kept_best;
  std::vector<std::string> doomed;
  const size_t first_recent = entries.size() > static_cast<size_t>(keep_last_) ? entries.size() - keep_last_ : 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i >= first_recent || (best && i == *best)) {
      if (best && i == *best) kept_best = kept.size();
      kept.push_back(entries[i]);
    } else {
      doomed.push_back(entries[i].file);
    }
  }
  write_index(directory_, kept, kept_best);  // the index never names a file that is about to go
  entries_ = std::move(kept);
  best_ = kept_best;
  for (const auto& name : doomed) {
    std::error_code ignored;  // a file that cannot be removed is left, never fatal to training
    std::filesystem::remove(directory_ / name, ignored);
  }
  return directory_ / file;
}

std::optional<std::filesystem::path> CheckpointManager::latest() const {
  if (entries_.empty()) return std::nullopt;
  return directory_ / entries_.back().file;
}

std::optional<std::filesystem::path> CheckpointManager::best() const {
  if (!best_) return std::nullopt;
  return directory_ / entries_[*best_].file;
}

}  // namespace graft::train
