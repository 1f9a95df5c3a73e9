// Each fine-tuning technique of `graft finetune` does what it says, on a tiny BERT written to a temp
// folder (config.json, model.safetensors, vocab.txt) and a toy sentiment CSV: what a strategy
// freezes stays bit for bit as loaded, what it trains moves.
#include "train/cli/finetune.h"
#include "train/cli/trained_run.h"
#include "train/cli/plot.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "nn/models/bert.h"
#include "nn/safetensors.h"
#include "nn/weights.h"
#include "tensor/error.h"
#include "tensor/random.h"
#include "train/trainer_fixtures.h"

namespace graft::cli {
namespace {

const std::vector<std::string> kPositive = {"good", "great", "fine", "lovely", "superb"};
const std::vector<std::string> kNegative = {"bad", "awful", "poor", "dull", "boring"};
const std::vector<std::string> kFiller = {"the", "film", "was", "a", "plot", "and"};
// The words of a second domain (DANN's target), among the same sentiment words: not in the
// vocabulary, so the target's texts hold [UNK] where the source's hold film words.
const std::vector<std::string> kTargetFiller = {"book", "chapter", "novel", "story"};

// A 2-layer BERT (hidden 16) with random weights, and a 120-row CSV whose label is which word
// family the text holds.
class FinetuneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_dir_ = dir_.path() / "tiny-bert";
    std::filesystem::create_directories(model_dir_);
    std::vector<std::string> vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (const auto* family : {&kPositive, &kNegative, &kFiller}) vocab.insert(vocab.end(), family->begin(), family->end());
    std::ofstream(model_dir_ / "vocab.txt") << [&] {
      std::string s;
      for (const auto& t : vocab) s += t + "\n";
      return s;
    }();
    std::ofstream(model_dir_ / "config.json")
        << R"({"architectures": ["BertModel"], "model_type": "bert", "vocab_size": )" << vocab.size()
        << R"(, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32,
              "max_position_embeddings": 64, "type_vocab_size": 2, "hidden_dropout_prob": 0.0,
              "attention_probs_dropout_prob": 0.0})";
    nn::BertConfig config = nn::BertConfig::from_file(model_dir_ / "config.json");
    manual_seed(7);
    nn::BertModel pretrained(config);
    nn::save_weights(pretrained, model_dir_ / "model.safetensors");

    data_path_ = dir_.path() / "toy.csv";
    std::ofstream csv(data_path_);
    csv << "sentiment,text\n";
    Generator g(3);
    for (int i = 0; i < 120; ++i) {
      const bool positive = i % 2 == 0;
      const auto& family = positive ? kPositive : kNegative;
      const std::vector<int64_t> pick = randint(0, 5, {3}, {DType::i64}, &g).to_vector<int64_t>();
      csv << (positive ? "pos" : "neg") << "," << kFiller[static_cast<size_t>(i) % kFiller.size()] << " "
          << family[static_cast<size_t>(pick[0])] << " " << kFiller[static_cast<size_t>(pick[1])] << " "
          << family[static_cast<size_t>(pick[2])] << "\n";
    }
  }

  // Rows "<label>,<text>" of a CSV with header `header`.
  std::filesystem::path write_csv(const std::string& name, const std::string& header,
                                  const std::vector<std::pair<std::string, std::string>>& rows) {
    const std::filesystem::path path = dir_.path() / name;
    std::ofstream csv(path);
    csv << header << "\n";
    for (const auto& [label, text] : rows) csv << label << "," << text << "\n";
    return path;
  }

  RunConfig config(const std::string& name, const std::string& json = "{}") {
    ConfigDocument doc = ConfigDocument::parse(json, "test.json");
    doc.set("model.path=" + model_dir_.string());
    doc.set("data.path=" + data_path_.string());
    doc.set("data.label_column=sentiment");
    doc.set(R"(data.labels=["neg", "pos"])");
    doc.set("train.progress=false");
    if (!doc.json().contains("train") || !doc.json()["train"].contains("epochs")) doc.set("train.epochs=4");
    if (!doc.json().contains("optim") || !doc.json()["optim"].contains("lr")) doc.set("optim.lr=3e-3");
    doc.set("output_dir=" + (dir_.path() / name).string());
    return read_run_config(doc);
  }

  FinetuneResult run(const RunConfig& c) {
    std::ostringstream log;
    FinetuneResult r = run_finetune(c, log);
    log_ = log.str();
    return r;
  }

  // Tensors of the run's saved model whose names start with `prefix`, compared with the pretrained
  // file (names there lack "bert.").
  bool unchanged(const std::string& run, const std::string& prefix) {
    const nn::SafetensorsFile trained = nn::SafetensorsFile::open(dir_.path() / run / "model.safetensors");
    const nn::SafetensorsFile base = nn::SafetensorsFile::open(model_dir_ / "model.safetensors");
    int64_t compared = 0;
    for (const std::string& name : trained.names()) {
      if (name.rfind("bert." + prefix, 0) != 0 || name.find("lora_") != std::string::npos) continue;
      const auto a = trained.load(name).to_vector<float>(), b = base.load(name.substr(5)).to_vector<float>();
      if (a != b) return false;
      ++compared;
    }
    EXPECT_GT(compared, 0) << "no tensor starts with bert." << prefix;
    return true;
  }

  test::TempDir dir_;
  std::filesystem::path model_dir_, data_path_;
  std::string log_;
};

TEST_F(FinetuneTest, FullFineTuningLearnsTheToyTaskAndWritesTheRunDirectory) {
  const FinetuneResult r = run(config("full", R"({"train": {"epochs": 6}})"));
  EXPECT_GE(r.test.at("accuracy"), 0.9) << log_;
  EXPECT_EQ(r.train_examples + r.validation_examples + r.test_examples, 120);
  EXPECT_EQ(r.trainable_parameters, r.parameters);
  for (const char* file : {"config.json", "labels.json", "log.jsonl", "model.safetensors", "results.json", "curves.svg"})
    EXPECT_TRUE(std::filesystem::exists(dir_.path() / "full" / file)) << file;
  EXPECT_FALSE(unchanged("full", "encoder.layer.0."));
  EXPECT_FALSE(unchanged("full", "embeddings."));
}

TEST_F(FinetuneTest, FeatureExtractionTrainsOnlyTheHead) {
  const FinetuneResult r = run(config("fe", R"({"strategy": {"type": "feature_extraction"}, "train": {"epochs": 8}})"));
  EXPECT_NE(log_.find("backbone features cached for 120 examples"), std::string::npos) << log_;
  EXPECT_EQ(r.trainable_parameters, 16 * 2 + 2);  // classifier weight and bias
  EXPECT_TRUE(unchanged("fe", "embeddings."));
  EXPECT_TRUE(unchanged("fe", "encoder."));
  EXPECT_GE(r.test.at("accuracy"), 0.6) << log_;
}

TEST_F(FinetuneTest, LastNTrainsTheTopLayersAndTheHeadOnly) {
  run(config("last1", R"({"strategy": {"type": "last_n", "last_n": 1}})"));
  EXPECT_FALSE(unchanged("last1", "encoder.layer.1."));
  EXPECT_TRUE(unchanged("last1", "encoder.layer.0."));
  EXPECT_TRUE(unchanged("last1", "embeddings."));
}

TEST_F(FinetuneTest, GradualUnfreezingUnfreezesOneGroupPerEpochFromTheTop) {
  // Epoch 1: head; epoch 2: + pooler and layer 1; epoch 3: + layer 0. The embeddings (depth 3)
  // would unfreeze in a fourth epoch.
  run(config("gradual", R"({"strategy": {"type": "gradual_unfreezing"}, "train": {"epochs": 3, "restore_best": false}})"));
  EXPECT_NE(log_.find("epoch 2 trains layer groups down to depth 1"), std::string::npos) << log_;
  EXPECT_NE(log_.find("epoch 3 trains layer groups down to depth 2"), std::string::npos) << log_;
  EXPECT_FALSE(unchanged("gradual", "encoder.layer.1."));
  EXPECT_FALSE(unchanged("gradual", "encoder.layer.0."));
  EXPECT_TRUE(unchanged("gradual", "embeddings."));
}

TEST_F(FinetuneTest, DiscriminativeLearningRatesDecayPerLayerGroup) {
  const std::string info = describe_run(config("info", R"({"strategy": {"layer_lr_decay": 0.5, "head_lr": 0.01}})"));
  EXPECT_NE(info.find("depth 0 (head): 34 parameters, 34 trainable, lr 0.01"), std::string::npos) << info;
  EXPECT_NE(info.find("lr 0.0015"), std::string::npos) << info;    // depth 1: 3e-3 * 0.5
  EXPECT_NE(info.find("lr 0.00075"), std::string::npos) << info;   // depth 2
  EXPECT_NE(info.find("lr 0.000375"), std::string::npos) << info;  // depth 3: the embeddings
}

TEST_F(FinetuneTest, LoraTrainsAdaptersAndHeadAndSavesTheAdapterAlone) {
  const FinetuneResult r =
      run(config("lora", R"({"lora": {"enabled": true, "rank": 2, "alpha": 4, "dropout": 0.0}, "train": {"epochs": 3}})"));
  // Adapters on query and value of 2 layers: 4 * r * (16 + 16), and the head.
  EXPECT_EQ(r.trainable_parameters, 4 * 2 * 32 + 34);
  EXPECT_TRUE(unchanged("lora", "encoder."));
  EXPECT_TRUE(unchanged("lora", "embeddings."));
  const nn::SafetensorsFile adapter = nn::SafetensorsFile::open(dir_.path() / "lora" / "adapter.safetensors");
  EXPECT_EQ(adapter.names().size(), 8u);
  EXPECT_NE(adapter.names()[0].find("lora_"), std::string::npos);
}

TEST_F(FinetuneTest, AFinishedRunPredictsAndEvaluatesAsItReported) {
  const FinetuneResult r = run(config("done", R"({"train": {"epochs": 6}})"));
  const TrainedRun trained(dir_.path() / "done");
  EXPECT_EQ(trained.labels(), (std::vector<std::string>{"neg", "pos"}));
  EXPECT_DOUBLE_EQ(trained.evaluate("test").at("accuracy"), r.test.at("accuracy"));
  const auto p = trained.predict({"the great film superb", "a awful plot dull"});
  ASSERT_EQ(p.size(), 2u);
  EXPECT_NEAR(p[0].probabilities[0] + p[0].probabilities[1], 1.0, 1e-6);
  if (r.test.at("accuracy") >= 0.9) {
    EXPECT_EQ(p[0].label, "pos");
    EXPECT_EQ(p[1].label, "neg");
  }
  // A finished run is not overwritten unless asked.
  EXPECT_THROW(run(config("done")), ValueError);
}

TEST_F(FinetuneTest, AugmentationAddsCopiesOfTheTrainingTextsOnly) {
  const FinetuneResult r = run(config("aug", R"({"augment": {"copies": 2}, "train": {"epochs": 1}})"));
  EXPECT_EQ(r.train_examples, 96 * 3);
  EXPECT_EQ(r.validation_examples + r.test_examples, 24);
}

TEST_F(FinetuneTest, BadDataIsAnErrorNamingTheFileAndField) {
  RunConfig c = config("bad");
  c.data.label_column = "stars";
  try {
    run(c);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("stars"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("toy.csv"), std::string::npos) << e.what();
  }
  c = config("bad2");
  c.data.labels = {"pos", "meh"};  // "meh" never occurs
  try {
    run(c);
    FAIL() << "no error";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("\"meh\""), std::string::npos) << e.what();
  }
}

TEST_F(FinetuneTest, TheLogRecordsTrainingAccuracyPerStep) {
  run(config("log", R"({"train": {"epochs": 1}})"));
  std::ifstream in(dir_.path() / "log" / "log.jsonl");
  int64_t steps = 0;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json record = nlohmann::json::parse(line);
    if (record["event"] != "step") continue;
    ++steps;
    ASSERT_TRUE(record.contains("train_accuracy")) << line;
    EXPECT_GE(record["train_accuracy"].get<double>(), 0.0);
    EXPECT_LE(record["train_accuracy"].get<double>(), 1.0);
  }
  EXPECT_EQ(steps, 3);  // 96 training rows in batches of 32
}

TEST_F(FinetuneTest, MultiTaskTrainsOneEncoderWithAHeadPerTask) {
  // A second task on other rows: is the text about a "film" or a "plot"?
  std::vector<std::pair<std::string, std::string>> rows;
  Generator g(5);
  for (int i = 0; i < 80; ++i) {
    const bool film = i % 2 == 0;
    const std::vector<int64_t> pick = randint(0, 5, {2}, {DType::i64}, &g).to_vector<int64_t>();
    rows.emplace_back(film ? "film" : "plot", std::string("the ") + (film ? "film " : "plot ") +
                                                  kPositive[static_cast<size_t>(pick[0])] + " " +
                                                  kNegative[static_cast<size_t>(pick[1])]);
  }
  const auto topic = write_csv("topic.csv", "topic,text", rows);
  const std::string tasks = R"({"task": {"name": "sentiment"}, "train": {"epochs": 6},
      "tasks": [{"name": "topic", "loss_weight": WEIGHT, "data": {"path": ")" + topic.string() +
                            R"(", "label_column": "topic", "labels": ["film", "plot"]}}]})";
  auto with_weight = [&](const std::string& w) { return std::regex_replace(tasks, std::regex("WEIGHT"), w); };
  const FinetuneResult r = run(config("multi", with_weight("1.0")));
  EXPECT_NE(log_.find("task topic: 64 train, 8 validation, 8 test"), std::string::npos) << log_;
  EXPECT_GE(r.test.at("sentiment.accuracy"), 0.9) << log_;
  EXPECT_GE(r.test.at("topic.accuracy"), 0.9) << log_;
  EXPECT_DOUBLE_EQ(r.test.at("accuracy"), (r.test.at("sentiment.accuracy") + r.test.at("topic.accuracy")) / 2);
  EXPECT_EQ(r.trainable_parameters, r.parameters);
  const nn::SafetensorsFile saved = nn::SafetensorsFile::open(dir_.path() / "multi" / "model.safetensors");
  EXPECT_TRUE(saved.contains("task_heads.topic.1.weight"));
  EXPECT_TRUE(saved.contains("classifier.weight"));  // the primary head keeps its name
  // A finished multi-task run loads back (every head) and predicts with the primary head.
  const TrainedRun trained(dir_.path() / "multi");
  EXPECT_EQ(trained.predict({"the great film superb"})[0].label, "pos");
  // A task whose loss weight is 0 gets no gradient: without weight decay its head stays as
  // initialised however long the run, while the primary head trains.
  auto unweighted = [&](const std::string& name, int epochs) {
    RunConfig c = config(name, with_weight("0.0"));
    c.train.epochs = epochs;
    c.optim.weight_decay = 0;
    run(c);
    return nn::SafetensorsFile::open(dir_.path() / name / "model.safetensors");
  };
  const nn::SafetensorsFile short_run = unweighted("w0_short", 1), long_run = unweighted("w0_long", 4);
  EXPECT_EQ(short_run.load("task_heads.topic.1.weight").to_vector<float>(),
            long_run.load("task_heads.topic.1.weight").to_vector<float>());
  EXPECT_NE(short_run.load("classifier.weight").to_vector<float>(), long_run.load("classifier.weight").to_vector<float>());
}

TEST_F(FinetuneTest, DomainAdversarialTrainingHidesTheDomainFromTheDomainClassifier) {
  // Target domain: the same sentiment words among book words instead of film words; its labels are
  // only evaluated.
  std::vector<std::pair<std::string, std::string>> rows;
  Generator g(9);
  for (int i = 0; i < 100; ++i) {
    const bool positive = i % 2 == 0;
    const auto& family = positive ? kPositive : kNegative;
    const std::vector<int64_t> pick = randint(0, 4, {3}, {DType::i64}, &g).to_vector<int64_t>();
    rows.emplace_back(positive ? "pos" : "neg", kTargetFiller[static_cast<size_t>(pick[0])] + " " +
                                                    family[static_cast<size_t>(pick[1])] + " " +
                                                    kTargetFiller[static_cast<size_t>(pick[2])]);
  }
  const auto target = write_csv("books.csv", "sentiment,text", rows);
  auto dann = [&](const std::string& name, double lambda) {
    return run(config(name, R"({"train": {"epochs": 10}, "optim": {"lr": 1e-3}, "strategy": {"head_lr": 1e-2}, "domain_adaptation": {"enabled": true, "path": ")" +
                                target.string() + R"(", "label_column": "sentiment", "lambda": )" +
                                std::to_string(lambda) + R"(, "lambda_schedule": "constant"}})"));
  };
  // lambda 0: the domain classifier learns, but its gradient never reaches the encoder. The
  // encoder trains at a tenth of the heads' lr, so what it keeps of the domain is up to DANN.
  const FinetuneResult plain = dann("no_reversal", 0.0);
  EXPECT_NE(log_.find("domain classifier behind gradient reversal"), std::string::npos) << log_;
  EXPECT_NE(log_.find("80 train (unlabelled), 10 validation, 10 test"), std::string::npos) << log_;
  const FinetuneResult adversarial = dann("dann", 1.0);
  for (const auto* r : {&plain, &adversarial}) {
    EXPECT_TRUE(r->test.count("domain.accuracy"));
    EXPECT_TRUE(r->test.count("target.accuracy"));
    EXPECT_GE(r->test.at("accuracy"), 0.9) << log_;  // the source task is still learnt
  }
  EXPECT_GE(plain.test.at("domain.accuracy"), 0.75) << log_;  // the domains are easy to tell apart
  EXPECT_LT(adversarial.test.at("domain.accuracy"), plain.test.at("domain.accuracy") - 0.1)
      << "plain " << plain.test.at("domain.accuracy") << ", adversarial " << adversarial.test.at("domain.accuracy");
}

TEST_F(FinetuneTest, AGruReadsPretrainedWordVectorsFromAFile) {
  // GloVe text for some of the vocabulary, dim 4.
  const std::filesystem::path vectors = dir_.path() / "vectors.txt";
  {
    std::ofstream out(vectors);
    out << "good 1 0 0 0\nbad -1 0 0 0\nfilm 0 1 0 0\ngreat 0.9 0.1 0 0\n";
  }
  const FinetuneResult r = run(config("gru_vectors", R"({"model": {"type": "gru", "gru_embeddings": "file",
      "word_vectors": ")" + vectors.string() + R"(", "word_vectors_oov": "zeros", "freeze_embeddings": true,
      "gru_hidden": 8}, "train": {"epochs": 2}})"));
  EXPECT_NE(log_.find("word vectors: " + vectors.string() + " (4 words, dim 4): found 4"), std::string::npos) << log_;
  const Tensor table = nn::SafetensorsFile::open(dir_.path() / "gru_vectors" / "model.safetensors").load("embedding.weight");
  EXPECT_EQ(table.shape(), (Shape{21, 4}));
  const std::vector<float> rows = table.to_vector<float>();
  EXPECT_EQ(std::vector<float>(rows.begin() + 5 * 4, rows.begin() + 6 * 4), (std::vector<float>{1, 0, 0, 0}));  // good
  EXPECT_EQ(std::vector<float>(rows.begin() + 10 * 4, rows.begin() + 11 * 4), (std::vector<float>{-1, 0, 0, 0}));  // bad
  EXPECT_EQ(std::vector<float>(rows.begin() + 7 * 4, rows.begin() + 8 * 4), (std::vector<float>{0, 0, 0, 0}));  // fine: OOV
  EXPECT_EQ(r.parameters - r.trainable_parameters, 21 * 4);  // the table is frozen
}

TEST_F(FinetuneTest, ANonUtf8LineIsAnErrorNamingFileAndLine) {
  const auto bad = write_csv("latin1.csv", "sentiment,text", {{"pos", "good film"}, {"neg", "caf\xe9 bad"}});
  RunConfig c = config("latin1");
  c.data.path = bad.string();
  try {
    run(c);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("latin1.csv line 3, column 8: not valid UTF-8 (byte 0xE9)"), std::string::npos) << what;
  }
}

TEST_F(FinetuneTest, LabelSmoothingKeepsTheModelFromCertainty) {
  // With smoothing e over 2 classes the best the model can do is put 1 - e/2 on the right class.
  const std::string gru = R"("model": {"type": "gru", "gru_embeddings": "random", "gru_embedding_dim": 8, "gru_hidden": 8},
      "optim": {"lr": 1e-2}, "schedule": {"type": "constant", "warmup_ratio": 0})";
  run(config("sharp", "{" + gru + R"(, "train": {"epochs": 20}})"));
  run(config("smooth", "{" + gru + R"(, "train": {"epochs": 20, "label_smoothing": 0.4}})"));
  const std::vector<std::string> texts = {"the great film superb", "a awful plot dull", "good fine lovely"};
  auto most_certain = [&](const std::string& name) {
    double best = 0;
    for (const auto& p : TrainedRun(dir_.path() / name).predict(texts))
      best = std::max(best, *std::max_element(p.probabilities.begin(), p.probabilities.end()));
    return best;
  };
  EXPECT_GT(most_certain("sharp"), 0.9);
  EXPECT_LT(most_certain("smooth"), 0.85);
}

TEST_F(FinetuneTest, DropoutOverrideReachesEveryDropout) {
  const std::string info = describe_run(config("info", R"({"model": {"dropout": 0.3}})"));
  // Embeddings, 2 per layer (attention output, output), the head's: all at 0.3 instead of the
  // tiny config's 0.0.
  EXPECT_NE(info.find("dropout: 6 x Dropout(p=0.3)\n"), std::string::npos) << info;
}

TEST_F(FinetuneTest, EarlyStoppingStopsAndRestoresTheBestWeights) {
  // lr 1: training diverges after the first epochs; patience 1 stops it and the best epoch's
  // weights are the ones saved.
  const FinetuneResult r = run(config("early", R"({"optim": {"lr": 1.0}, "schedule": {"type": "constant", "warmup_ratio": 0},
      "train": {"epochs": 20, "early_stopping_patience": 1}})"));
  EXPECT_TRUE(r.stopped_early) << log_;
  EXPECT_LT(r.steps, 20 * 3);
  std::ifstream in(dir_.path() / "early" / "log.jsonl");
  double best = 0;
  bool restored = false;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json record = nlohmann::json::parse(line);
    if (record["event"] == "eval") best = std::max(best, record["accuracy"].get<double>());
    if (record["event"] == "restore_best") restored = true;
  }
  EXPECT_TRUE(restored);
  EXPECT_DOUBLE_EQ(r.validation.at("accuracy"), best);
}

TEST_F(FinetuneTest, TheRunDirectoryHoldsItsLearningCurves) {
  run(config("curves", R"({"train": {"epochs": 2}})"));
  std::ifstream in(dir_.path() / "curves" / "curves.svg");
  const std::string svg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_EQ(std::count(svg.begin(), svg.end(), '\n') > 10, true);
  for (const char* part : {">loss<", ">accuracy<", "training (moving average)", "validation", "<polyline", "<circle"})
    EXPECT_NE(svg.find(part), std::string::npos) << part;
  // A log with a broken line: the error names it.
  std::ofstream(dir_.path() / "bad.jsonl") << R"({"event": "step", "step": 1, "loss": 0.5})" << "\n{oops\n";
  try {
    write_learning_curves(dir_.path() / "bad.jsonl", dir_.path() / "bad.svg");
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "bad.svg"));
}

}  // namespace
}  // namespace graft::cli
