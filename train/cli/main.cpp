// The `graft` command.
//   graft finetune --config run.json [--set key=value ...]   train; the last line: test_accuracy=<x> ...
//   graft info     --config run.json [--set key=value ...]   the model, its layer groups, what trains
//   graft predict  --run DIR [--input FILE]                  text lines in, JSON lines out (label, probabilities)
//   graft eval     --run DIR [--split test|validation] [--data FILE]   metrics as JSON
//   graft embed    --model DIR [--input FILE]                sentence embeddings (mean pooled, L2-normalised), JSON lines
//   graft plot     --run DIR [--out FILE]                   learning curves as SVG from the run's log.jsonl
//   graft defaults                                           every config key with its default (train/cli/run_config.h says what each means)
// Errors are printed as "graft: error: <message>" with exit status 1; usage errors exit 2.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/grad_mode.h"
#include "nn/models/bert.h"
#include "tensor/error.h"
#include "train/cli/config.h"
#include "train/cli/finetune.h"
#include "train/cli/trained_run.h"
#include "train/cli/plot.h"
#include "train/data/wordpiece.h"
#include "train/distributed/process_group.h"

namespace {

using namespace graft;

cli::RunConfig load_config(const std::string& path, const std::vector<std::string>& sets) {
  cli::ConfigDocument doc = cli::ConfigDocument::load(path);
  for (const std::string& s : sets) doc.set(s);
  return cli::read_run_config(doc);
}

// Non-empty lines of a file, or of stdin for "-".
std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream file;
  if (path != "-") {
    file.open(path);
    if (!file) throw IOError("graft: cannot read " + path);
  }
  std::istream& in = path == "-" ? std::cin : file;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

int finetune(const std::string& config_path, const std::vector<std::string>& sets) {
  const cli::RunConfig config = load_config(config_path, sets);
  if (config.model.type == "gru_forecaster" && graft::train::distributed::ProcessGroup::launched_with_several_processes())
    throw NotImplementedError("graft finetune: a gru_forecaster run does not train data-parallel; run it as one process");
  // Under mpirun / srun only rank 0 prints (run_finetune trains data-parallel over the processes).
  const bool quiet = graft::train::distributed::ProcessGroup::environment_rank() > 0;
  std::ostream discard(nullptr);
  const cli::FinetuneResult r = cli::run_finetune(config, quiet ? discard : std::cout);
  if (quiet) return 0;
  if (config.model.type == "gru_forecaster")
    std::cout << "test_rmse=" << r.test.at("rmse") << " test_mae=" << r.test.at("mae")
              << " baseline_rmse=" << r.baseline.at("rmse") << " run=" << config.output_dir << std::endl;
  else
    std::cout << "test_accuracy=" << r.test.at("accuracy") << " test_macro_f1=" << r.test.at("macro_f1")
              << " run=" << config.output_dir << std::endl;
  return 0;
}

int plot(const std::string& run_dir, std::string out) {
  if (out.empty()) out = (std::filesystem::path(run_dir) / "curves.svg").string();
  cli::write_learning_curves(std::filesystem::path(run_dir) / "log.jsonl", out);
  std::cout << "plot: wrote " << out << std::endl;
  return 0;
}

int predict(const std::string& run_dir, const std::string& input) {
  const cli::TrainedRun run(run_dir);
  const std::vector<std::string> texts = read_lines(input);
  const auto predictions = run.predict(texts);
  for (size_t i = 0; i < texts.size(); ++i) {
    nlohmann::json probabilities;
    for (size_t c = 0; c < run.labels().size(); ++c) probabilities[run.labels()[c]] = predictions[i].probabilities[c];
    std::cout << nlohmann::json{{"text", texts[i]}, {"label", predictions[i].label}, {"probabilities", probabilities}}.dump()
              << "\n";
  }
  return 0;
}

int embed(const std::string& model_dir, const std::string& input) {
  const auto model = nn::BertModel::from_pretrained(model_dir, {.add_pooling_layer = false});
  const data::BertTokenizer tokenizer = data::BertTokenizer::from_pretrained(model_dir);
  data::EncodeOptions options;
  options.truncation = data::Truncation{model->config().max_position_embeddings};
  options.padding.strategy = data::PaddingStrategy::longest;
  const std::vector<std::string> texts = read_lines(input);
  NoGradGuard no_grad;
  constexpr size_t kBatch = 32;
  for (size_t start = 0; start < texts.size(); start += kBatch) {
    const std::vector<std::string> batch(texts.begin() + static_cast<std::ptrdiff_t>(start),
                                         texts.begin() + static_cast<std::ptrdiff_t>(std::min(texts.size(), start + kBatch)));
    const data::BatchEncoding enc = tokenizer.encode_batch(batch, options);
    const Tensor e = model->sentence_embedding(enc.input_ids, enc.attention_mask, enc.token_type_ids);
    const std::vector<float> values = e.to_vector<float>();
    const size_t E = static_cast<size_t>(e.shape()[1]);
    for (size_t i = 0; i < batch.size(); ++i)
      std::cout << nlohmann::json{{"text", batch[i]},
                                  {"embedding", std::vector<float>(values.begin() + static_cast<std::ptrdiff_t>(i * E),
                                                                   values.begin() + static_cast<std::ptrdiff_t>((i + 1) * E))}}
                       .dump()
                << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"graft: fine-tune pretrained models (BERT-family, GRU) in C++"};
  app.require_subcommand(1);
  std::string config_path, run_dir, input = "-", split = "test", data_path, model_dir;
  std::vector<std::string> sets;

  CLI::App* finetune_cmd = app.add_subcommand("finetune", "fine-tune as a run config says; writes its output_dir");
  finetune_cmd->add_option("--config", config_path, "run config (JSON)")->required()->check(CLI::ExistingFile);
  finetune_cmd->add_option("--set", sets, "override a config key: --set optim.lr=3e-5 (repeatable)");
  finetune_cmd->add_option_function<std::string>(
      "--device", [&](const std::string& d) { sets.push_back("train.device=" + d); },
      "cpu, cuda or cuda:N (the same as --set train.device=...)");

  CLI::App* info_cmd = app.add_subcommand("info", "the model a config builds, its layer groups and what trains");
  info_cmd->add_option("--config", config_path, "run config (JSON)")->required()->check(CLI::ExistingFile);
  info_cmd->add_option("--set", sets, "override a config key (repeatable)");

  CLI::App* predict_cmd = app.add_subcommand("predict", "label text lines with a finished run's model");
  predict_cmd->add_option("--run", run_dir, "the run's output_dir")->required()->check(CLI::ExistingDirectory);
  predict_cmd->add_option("--input", input, "text file, one text a line ('-': stdin)");

  CLI::App* eval_cmd = app.add_subcommand("eval", "metrics of a finished run's model");
  eval_cmd->add_option("--run", run_dir, "the run's output_dir")->required()->check(CLI::ExistingDirectory);
  eval_cmd->add_option("--split", split, "validation or test (of the run's own data split)");
  eval_cmd->add_option("--data", data_path, "evaluate on this file instead (the config's columns)");

  CLI::App* embed_cmd = app.add_subcommand("embed", "sentence embeddings of text lines (mean pooling, L2-normalised)");
  embed_cmd->add_option("--model", model_dir, "a BERT folder (config.json, model.safetensors, vocab.txt)")
      ->required()
      ->check(CLI::ExistingDirectory);
  embed_cmd->add_option("--input", input, "text file, one text a line ('-': stdin)");

  std::string plot_out;
  CLI::App* plot_cmd = app.add_subcommand("plot", "learning curves of a run as SVG, from its log.jsonl");
  plot_cmd->add_option("--run", run_dir, "the run's output_dir")->required()->check(CLI::ExistingDirectory);
  plot_cmd->add_option("--out", plot_out, "the SVG to write (default: <run>/curves.svg)");

  CLI::App* defaults_cmd = app.add_subcommand("defaults", "print every config key with its default, as JSON");

  CLI11_PARSE(app, argc, argv);
  try {
    if (*finetune_cmd) return finetune(config_path, sets);
    if (*info_cmd) {
      std::cout << cli::describe_run(load_config(config_path, sets));
      return 0;
    }
    if (*predict_cmd) return predict(run_dir, input);
    if (*eval_cmd) {
      std::cout << nlohmann::json(cli::TrainedRun(run_dir).evaluate(split, data_path)).dump(2) << std::endl;
      return 0;
    }
    if (*embed_cmd) return embed(model_dir, input);
    if (*plot_cmd) return plot(run_dir, plot_out);
    if (*defaults_cmd) {
      std::cout << cli::to_json(cli::RunConfig{}).dump(2) << std::endl;
      return 0;
    }
  } catch (const graft::Error& e) {
    std::cerr << "graft: error: " << e.what() << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "graft: error: " << e.what() << std::endl;
    return 1;
  }
  return 2;
}
