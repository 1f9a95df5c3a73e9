// `graft finetune` under mpirun: run_finetune creates the process group itself (the launcher's
// environment says several processes), trains data-parallel, and only rank 0 writes the run's
// model and results. On a tiny BERT (as tests/train/cli/finetune_test.cpp) and a toy CSV, and a
// GRU forecaster on a noisy sine (as tests/train/cli/forecast_test.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nn/models/bert.h"
#include "nn/weights.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "train/cli/config.h"
#include "train/cli/run_config.h"
#include "train/cli/finetune.h"
#include "dist_test_world.h"

using namespace graft;
using graft::test::world;

namespace {

// Rank 0 writes the tiny model and the data; every rank gets the directory.
std::filesystem::path write_fixture(const std::string& name) {
  std::string dir;
  if (world()->rank() == 0) {
    const auto path = std::filesystem::temp_directory_path() / ("graft-dist-ft-" + std::to_string(::getpid()) + "-" + name);
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path / "tiny-bert");
    const std::vector<std::string> positive = {"good", "great", "fine", "lovely", "superb"};
    const std::vector<std::string> negative = {"bad", "awful", "poor", "dull", "boring"};
    const std::vector<std::string> filler = {"the", "film", "was", "a", "plot", "and"};
    std::vector<std::string> vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (const auto* family : {&positive, &negative, &filler}) vocab.insert(vocab.end(), family->begin(), family->end());
    {
      std::ofstream out(path / "tiny-bert" / "vocab.txt");
      for (const auto& t : vocab) out << t << "\n";
    }
    std::ofstream(path / "tiny-bert" / "config.json")
        << R"({"architectures": ["BertModel"], "model_type": "bert", "vocab_size": )" << vocab.size()
        << R"(, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32,
              "max_position_embeddings": 64, "type_vocab_size": 2, "hidden_dropout_prob": 0.0,
              "attention_probs_dropout_prob": 0.0})";
    manual_seed(7);
    nn::BertModel pretrained(nn::BertConfig::from_file(path / "tiny-bert" / "config.json"));
    nn::save_weights(pretrained, path / "tiny-bert" / "model.safetensors");
    std::ofstream csv(path / "toy.csv");
    csv << "sentiment,text\n";
    Generator g(3);
    for (int i = 0; i < 120; ++i) {
      const bool pos = i % 2 == 0;
      const auto& family = pos ? positive : negative;
      const auto pick = randint(0, 5, {3}, {DType::i64}, &g).to_vector<int64_t>();
      csv << (pos ? "pos" : "neg") << "," << filler[static_cast<size_t>(i) % filler.size()] << " "
          << family[static_cast<size_t>(pick[0])] << " " << filler[static_cast<size_t>(pick[1])] << " "
          << family[static_cast<size_t>(pick[2])] << "\n";
    }
    dir = path.string();
  }
  return world()->broadcast_bytes(dir, 0);
}

cli::RunConfig make_config(const std::filesystem::path& dir, const std::string& run, const std::string& json) {
  cli::ConfigDocument doc = cli::ConfigDocument::parse(json, "test.json");
  doc.set("model.path=" + (dir / "tiny-bert").string());
  doc.set("data.path=" + (dir / "toy.csv").string());
  doc.set("data.label_column=sentiment");
  doc.set(R"(data.labels=["neg", "pos"])");
  doc.set("train.progress=false");
  doc.set("train.batch_size=8");
  doc.set("optim.lr=3e-3");
  doc.set("output_dir=" + (dir / run).string());
  return cli::read_run_config(doc);
}

}  // namespace

TEST(DistributedFinetune, TrainsDataParallelAndOnlyRankZeroWritesTheRun) {
  auto& g = world();
  const std::filesystem::path dir = write_fixture("full");
  for (const std::string strategy : {"full", "gradual_unfreezing"}) {
    // Gradual unfreezing changes the trainable parameters between epochs: the gradient buckets follow.
    const cli::RunConfig config = make_config(dir, strategy, R"({"strategy": {"type": ")" + strategy +
                                                                 R"("}, "train": {"epochs": 6, "restore_best": false}})");
    std::ostringstream log;
    const cli::FinetuneResult r = cli::run_finetune(config, log);
    EXPECT_GE(r.test.at("accuracy"), strategy == "full" ? 0.9 : 0.6) << log.str();
    for (const char* file : {"config.json", "labels.json", "log.jsonl", "model.safetensors", "results.json"})
      EXPECT_TRUE(std::filesystem::exists(dir / strategy / file)) << file;
    // The same results on every rank.
    std::vector<double> mine{r.test.at("accuracy"), r.test.at("macro_f1"), static_cast<double>(r.steps)};
    for (const auto& other : g->all_gather(mine)) EXPECT_EQ(other, mine) << strategy;
    // train.batch_size is the global batch (8), as in one process: the same number of steps.
    EXPECT_EQ(r.steps, 6 * ((r.train_examples + 7) / 8)) << strategy;
  }
  g->barrier();
  if (g->rank() == 0) std::filesystem::remove_all(dir);
}

// Forecaster runs (model.type gru_forecaster) join the process group as text runs do.
TEST(DistributedFinetune, ForecasterTrainsDataParallelAndOnlyRankZeroWritesTheRun) {
  auto& g = world();
  std::string dir_name;
  if (g->rank() == 0) {
    const auto path = std::filesystem::temp_directory_path() / ("graft-dist-fc-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
    std::ofstream csv(path / "series.csv");
    csv << "step,value\n";
    Generator noise_gen(5);
    const std::vector<float> noise = randn({400}, DType::f32, &noise_gen).to_vector<float>();
    for (int i = 0; i < 400; ++i)
      csv << i << "," << 50.0 + 10.0 * std::sin(2.0 * M_PI * i / 24.0) + 0.3 * noise[static_cast<size_t>(i)] << "\n";
    dir_name = path.string();
  }
  const std::filesystem::path dir = g->broadcast_bytes(dir_name, 0);
  cli::ConfigDocument doc = cli::ConfigDocument::parse(R"({"train": {"epochs": 4, "restore_best": false}})", "test.json");
  doc.set("model.type=gru_forecaster");
  doc.set("model.gru_hidden=8");
  doc.set("data.path=" + (dir / "series.csv").string());
  doc.set("forecast.column=value");
  doc.set("forecast.window=24");
  doc.set("train.progress=false");
  doc.set("train.batch_size=8");
  doc.set("optim.lr=1e-2");
  doc.set("output_dir=" + (dir / "run").string());
  const cli::RunConfig config = cli::read_run_config(doc);
  std::ostringstream log;
  const cli::FinetuneResult r = cli::run_finetune(config, log);
  for (const char* file : {"config.json", "log.jsonl", "model.safetensors", "results.json"})
    EXPECT_TRUE(std::filesystem::exists(dir / "run" / file)) << file;
  // The same results on every rank, and train.batch_size the global batch: the steps of one process.
  std::vector<double> mine{r.test.at("mse"), r.test.at("mae"), static_cast<double>(r.steps)};
  for (const auto& other : g->all_gather(mine)) EXPECT_EQ(other, mine);
  EXPECT_EQ(r.steps, 4 * ((r.train_examples + 7) / 8));
  g->barrier();
  if (g->rank() == 0) std::filesystem::remove_all(dir);
}
