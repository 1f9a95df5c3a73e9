// Forecaster runs of `graft finetune` (model.type gru_forecaster), on a noisy sine written to a temp
// CSV: a run learns the series (beats the persistence baseline), init_from starts from an earlier
// run's weights bit for bit and refuses another architecture, strategies freeze what they say, and
// bad data is an error naming where it is.
#include "train/cli/forecast.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "nn/safetensors.h"
#include "tensor/error.h"
#include "tensor/random.h"
#include "train/trainer_fixtures.h"

namespace graft::cli {
namespace {

bool mentions(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class ForecastTest : public ::testing::Test {
 protected:
  void SetUp() override { data_path_ = write_series("series.csv", 600); }

  // "step,value" rows: a sine of period 24 (amplitude 10, offset 50) plus Gaussian noise of std 0.3,
  // so persistence is off by about 1.9 and a model that learns the cycle by much less; from value
  // `shift_from` on, `shift` is added (a level shift).
  std::filesystem::path write_series(const std::string& name, int n, int shift_from = 0, double shift = 0.0) {
    const auto path = dir_.path() / name;
    std::ofstream csv(path);
    csv << "step,value\n";
    Generator g(5);
    const std::vector<float> noise = randn({n}, DType::f32, &g).to_vector<float>();
    for (int i = 0; i < n; ++i)
      csv << i << "," << 50.0 + 10.0 * std::sin(2.0 * M_PI * i / 24.0) + 0.3 * noise[static_cast<size_t>(i)] +
                 (i >= shift_from ? shift : 0.0) << "\n";
    return path;
  }

  RunConfig config(const std::string& name, const std::string& json = "{}") {
    ConfigDocument doc = ConfigDocument::parse(json, "test.json");
    auto set_default = [&](const std::string& section, const std::string& key, const std::string& assignment) {
      if (!doc.json().contains(section) || !doc.json()[section].contains(key)) doc.set(assignment);
    };
    doc.set("model.type=gru_forecaster");
    set_default("model", "gru_hidden", "model.gru_hidden=16");
    set_default("data", "path", "data.path=" + data_path_.string());
    set_default("forecast", "column", "forecast.column=value");
    set_default("forecast", "window", "forecast.window=24");
    set_default("train", "epochs", "train.epochs=8");
    set_default("optim", "lr", "optim.lr=1e-2");
    doc.set("train.progress=false");
    doc.set("output_dir=" + (dir_.path() / name).string());
    return read_run_config(doc);
  }

  FinetuneResult run(const RunConfig& c) {
    std::ostringstream log;
    FinetuneResult r = run_forecast(c, log);
    log_ = log.str();
    return r;
  }

  // Whether the tensors of run `a`'s and run `b`'s saved models whose names start with `prefix`
  // are equal (at least one is compared).
  bool same_weights(const std::string& a, const std::string& b, const std::string& prefix) {
    const nn::SafetensorsFile fa = nn::SafetensorsFile::open(dir_.path() / a / "model.safetensors");
    const nn::SafetensorsFile fb = nn::SafetensorsFile::open(dir_.path() / b / "model.safetensors");
    int64_t compared = 0;
    for (const std::string& name : fa.names()) {
      if (name.rfind(prefix, 0) != 0) continue;
      if (fa.load(name).to_vector<float>() != fb.load(name).to_vector<float>()) return false;
      ++compared;
    }
    EXPECT_GT(compared, 0) << "no tensor starts with " << prefix;
    return true;
  }

  test::TempDir dir_;
  std::filesystem::path data_path_;
  std::string log_;
};

TEST_F(ForecastTest, ARunLearnsTheSeriesAndBeatsPersistence) {
  const FinetuneResult r = run(config("full"));
  // 600 values split 480 / 60 / 60: 456 training windows, one per validation or test value.
  EXPECT_EQ(r.train_examples, 480 - 24);
  EXPECT_EQ(r.validation_examples, 60);
  EXPECT_EQ(r.test_examples, 60);
  EXPECT_EQ(r.trainable_parameters, r.parameters);
  for (const char* key : {"mse", "mae", "rmse", "loss"}) EXPECT_TRUE(r.test.count(key)) << key;
  EXPECT_NEAR(r.test.at("mse"), r.test.at("rmse") * r.test.at("rmse"), 1e-6 * r.test.at("mse"));
  for (const char* file : {"config.json", "log.jsonl", "model.safetensors", "results.json"})
    EXPECT_TRUE(std::filesystem::exists(dir_.path() / "full" / file)) << file;

  std::ifstream in(dir_.path() / "full" / "results.json");
  const nlohmann::json results = nlohmann::json::parse(in);
  const double persistence = results["baseline_persistence"]["test"]["rmse"].get<double>();
  EXPECT_GT(persistence, 1.5);  // the sine moves up to 2.6 a step
  EXPECT_LT(r.test.at("rmse"), 0.5 * persistence) << log_;
  EXPECT_LT(r.validation.at("rmse"), 0.5 * results["baseline_persistence"]["validation"]["rmse"].get<double>()) << log_;
  // Metrics are in the series' units; the loss is on z-scored values (std about 7 here).
  EXPECT_EQ(results["normalization"]["mode"], "train");
  EXPECT_NEAR(results["normalization"]["mean"].get<double>(), 50.0, 0.5);
  EXPECT_LT(r.test.at("loss"), r.test.at("mse") / 10);
  EXPECT_EQ(results["test"]["rmse"].get<double>(), r.test.at("rmse"));
  EXPECT_EQ(r.baseline.at("rmse"), persistence);  // what `graft finetune` prints as baseline_rmse
  EXPECT_TRUE(mentions(log_, "persistence")) << log_;

  EXPECT_THROW(run(config("full")), ValueError);  // a finished run is not overwritten unless asked
}

TEST_F(ForecastTest, WindowNormalisationFollowsALevelShiftThatTrainModeMisses) {
  // +30 from the first validation value on: z-scored with the train part's statistics, validation
  // and test sit 4 stds above anything trained on; relative to each window's last value they look
  // like the train part.
  data_path_ = write_series("shifted.csv", 600, 480, 30.0);
  const FinetuneResult window = run(config("window", R"({"forecast": {"normalize": "window"}})"));
  std::ifstream in(dir_.path() / "window" / "results.json");
  const nlohmann::json results = nlohmann::json::parse(in);
  EXPECT_EQ(results["normalization"]["mode"], "window");
  // Steps of the sine: std 10 * 2 pi / 24 / sqrt(2) = 1.85; with the noise's about 1.9.
  EXPECT_NEAR(results["normalization"]["std_of_changes"].get<double>(), 1.9, 0.15);
  const double persistence = results["baseline_persistence"]["test"]["rmse"].get<double>();
  EXPECT_EQ(window.baseline.at("rmse"), persistence);
  EXPECT_EQ(window.baseline.at("mae"), results["baseline_persistence"]["test"]["mae"].get<double>());
  EXPECT_EQ(results["test"]["rmse"].get<double>(), window.test.at("rmse"));
  EXPECT_LT(window.test.at("rmse"), 0.5 * persistence) << log_;  // in the series' units
  EXPECT_TRUE(mentions(log_, "relative to its last value")) << log_;

  const FinetuneResult train = run(config("train"));
  EXPECT_EQ(train.baseline.at("rmse"), persistence);  // the baseline does not depend on the mode
  EXPECT_GT(train.test.at("rmse"), 3 * window.test.at("rmse")) << log_;
}

TEST_F(ForecastTest, AHorizonOfThreePredictsThreeValuesPerWindow) {
  const FinetuneResult r = run(config("h3", R"({"forecast": {"horizon": 3}, "train": {"epochs": 2}})"));
  EXPECT_EQ(r.validation_examples, 60 - 3 + 1);  // every window's three targets lie in the part
  EXPECT_EQ(r.test_examples, 58);
  EXPECT_EQ(r.parameters - 3 * (16 + 1), 3 * 16 * (1 + 16 + 2));  // the head has 3 outputs
  std::ifstream in(dir_.path() / "h3" / "results.json");
  const nlohmann::json results = nlohmann::json::parse(in);
  // Persistence drifts further over 3 steps than over 1 (about 1.9 there).
  EXPECT_GT(results["baseline_persistence"]["test"]["rmse"].get<double>(), 3.0);
}

TEST_F(ForecastTest, InitFromStartsFromTheEarlierRunsWeights) {
  run(config("source", R"({"train": {"epochs": 1}})"));
  // lr 0: the run ends with the weights it started from; its window differs (GRU weights do not
  // depend on it).
  run(config("copy", R"({"forecast": {"init_from": ")" + (dir_.path() / "source").string() +
                         R"(", "window": 12}, "optim": {"lr": 0}, "train": {"epochs": 1}})"));
  EXPECT_TRUE(mentions(log_, "init_from: " + (dir_.path() / "source").string())) << log_;
  EXPECT_TRUE(same_weights("source", "copy", "gru."));
  EXPECT_TRUE(same_weights("source", "copy", "head."));

  try {
    run(config("wider", R"({"forecast": {"init_from": ")" + (dir_.path() / "source").string() +
                            R"("}, "model": {"gru_hidden": 8}})"));
    FAIL() << "no error";
  } catch (const ValueError& e) {
    EXPECT_TRUE(mentions(e.what(), "model.gru_hidden 16")) << e.what();
    EXPECT_TRUE(mentions(e.what(), "model.gru_hidden 8")) << e.what();
  }
  EXPECT_THROW(run(config("far", R"({"forecast": {"init_from": ")" + (dir_.path() / "source").string() +
                                     R"(", "horizon": 3}})")),
               ValueError);
  EXPECT_THROW(run(config("nowhere", R"({"forecast": {"init_from": ")" + (dir_.path() / "none").string() + R"("}})")),
               IOError);
}

TEST_F(ForecastTest, StrategiesFreezeTheLowerLayersOrTheWholeGru) {
  run(config("source2", R"({"model": {"gru_layers": 2}, "train": {"epochs": 1}})"));
  const std::string from = R"("forecast": {"init_from": ")" + (dir_.path() / "source2").string() + R"("})";
  const FinetuneResult last = run(config("last1", R"({"model": {"gru_layers": 2}, "strategy": {"type": "last_n", "last_n": 1}, )" +
                                                      from + R"(, "train": {"epochs": 1}})"));
  EXPECT_TRUE(same_weights("source2", "last1", "gru.weight_ih_l0"));
  EXPECT_TRUE(same_weights("source2", "last1", "gru.bias_hh_l0"));
  EXPECT_FALSE(same_weights("source2", "last1", "gru.weight_hh_l1"));
  EXPECT_FALSE(same_weights("source2", "last1", "head."));
  // GRU layer 1: weight_ih and weight_hh [48, 16], two biases [48]; the head: 16 + 1.
  EXPECT_EQ(last.trainable_parameters, 2 * 48 * 16 + 2 * 48 + 17);

  const FinetuneResult head = run(config("head", R"({"model": {"gru_layers": 2}, "strategy": {"type": "feature_extraction"}, )" +
                                                     from + R"(, "train": {"epochs": 2}})"));
  EXPECT_EQ(head.trainable_parameters, 16 + 1);
  EXPECT_TRUE(same_weights("source2", "head", "gru."));
  EXPECT_FALSE(same_weights("source2", "head", "head."));

  const std::string info = describe_forecast(
      config("info", R"({"model": {"gru_layers": 2}, "strategy": {"type": "last_n", "last_n": 1, "head_lr": 0.05}})"));
  EXPECT_TRUE(mentions(info, "depth 0 (head): 17 parameters, 17 trainable, lr 0.05")) << info;
  EXPECT_TRUE(mentions(info, "depth 2 (gru layer 0): 912 parameters, 0 trainable")) << info;
}

TEST_F(ForecastTest, BadDataIsAnErrorNamingTheFileAndPlace) {
  RunConfig c = config("missing");
  c.forecast.column = "temp";
  try {
    run(c);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_TRUE(mentions(e.what(), "series.csv")) << e.what();
    EXPECT_TRUE(mentions(e.what(), "\"temp\"")) << e.what();
  }

  const auto bad = dir_.path() / "bad.csv";
  std::ofstream(bad) << "step,value\n0,1.5\n1,2.5\n2,warm\n3,4\n";
  c = config("bad", R"({"data": {"path": ")" + bad.string() + R"("}})");
  try {
    run(c);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_TRUE(mentions(e.what(), "bad.csv line 4")) << e.what();
    EXPECT_TRUE(mentions(e.what(), "\"value\"")) << e.what();
    EXPECT_TRUE(mentions(e.what(), "warm")) << e.what();
  }
}

TEST_F(ForecastTest, ASeriesTooShortForTheSplitIsAValueErrorNamingTheSizes) {
  const auto shortest = write_series("short.csv", 30);
  try {
    run(config("short", R"({"data": {"path": ")" + shortest.string() + R"("}})"));
    FAIL() << "no error";
  } catch (const ValueError& e) {
    // 30 values split 0.8 / 0.1 / 0.1: 24 to train, short of window 24 + horizon 1.
    EXPECT_TRUE(mentions(e.what(), "30 values")) << e.what();
    EXPECT_TRUE(mentions(e.what(), "24 to train")) << e.what();
    EXPECT_TRUE(mentions(e.what(), "window 24 + horizon 1")) << e.what();
  }
}

}  // namespace
}  // namespace graft::cli
