#include "train/cli/config.h"
#include "train/cli/run_config.h"
#include "train/cli/optimization.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "tensor/error.h"

namespace graft::cli {
namespace {

// The message of the FormatError that fn throws ("" if it throws none).
template <class Fn>
std::string format_error(Fn fn) {
  try {
    fn();
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

const char* kRun = R"({
  "model": {"path": "assets/all-MiniLM-L6-v2", "pooling": "mean"},
  "optim": {
    "lr": 3e-5,
    "betas": [0.9, 0.999],
    "decay": true
  },
  "epochs": 3,
  "tasks": [{"name": "sst"}, {"name": "bbc", "weight": 0.5}]
})";

TEST(Config, ReadsTypedValuesWithDefaults) {
  ConfigDocument doc = ConfigDocument::parse(kRun, "run.json");
  ConfigReader r(doc);
  EXPECT_EQ(r.string("model.path", ""), "assets/all-MiniLM-L6-v2");
  EXPECT_EQ(r.choice("model.pooling", "cls", {"cls", "mean"}), "mean");
  EXPECT_DOUBLE_EQ(r.number("optim.lr", 1.0), 3e-5);
  EXPECT_EQ(r.numbers("optim.betas", {}), (std::vector<double>{0.9, 0.999}));
  EXPECT_TRUE(r.boolean("optim.decay", false));
  EXPECT_EQ(r.integer("epochs", 1), 3);
  EXPECT_EQ(r.integer("batch_size", 32), 32);  // absent: the default
  EXPECT_EQ(r.string("tasks.0.name", ""), "sst");
  EXPECT_EQ(r.string("tasks.1.name", ""), "bbc");
  EXPECT_DOUBLE_EQ(r.number("tasks.1.weight", 1.0), 0.5);
  EXPECT_DOUBLE_EQ(r.number("tasks.0.weight", 1.0), 1.0);
  EXPECT_NO_THROW(r.finish());
}

TEST(Config, UnknownKeysNameTheirLinesAndANearMiss) {
  ConfigDocument doc = ConfigDocument::parse(R"({
  "optim": {
    "lr": 1e-3,
    "weight_decya": 0.01
  },
  "epocs": 2
})",
                                             "run.json");
  ConfigReader r(doc);
  r.number("optim.lr", 0);
  r.number("optim.weight_decay", 0);
  r.integer("epochs", 1);
  const std::string msg = format_error([&] { r.finish(); });
  EXPECT_NE(msg.find("run.json:4: optim.weight_decya (did you mean optim.weight_decay?)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("run.json:6: epocs (did you mean epochs?)"), std::string::npos) << msg;
}

TEST(Config, UnreadArrayElementsAndSectionsAreUnknown) {
  ConfigDocument doc = ConfigDocument::parse(kRun, "run.json");
  ConfigReader r(doc);
  r.string("model.path", "");
  r.accept("model.pooling");
  r.accept("optim");
  r.integer("epochs", 1);
  r.string("tasks.0.name", "");
  r.string("tasks.1.name", "");
  const std::string msg = format_error([&] { r.finish(); });
  EXPECT_NE(msg.find("run.json:9: tasks.1.weight"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("optim"), std::string::npos) << msg;  // accepted as a whole
}

TEST(Config, WrongTypesAndRangesNameFileLineAndField) {
  ConfigDocument doc = ConfigDocument::parse("{\n\"optim\": {\"lr\": \"fast\"},\n\"epochs\": 2.5, \"p\": 1.5}", "x.json");
  ConfigReader r(doc);
  std::string msg = format_error([&] { r.number("optim.lr", 0); });
  EXPECT_NE(msg.find("x.json:2: optim.lr: expected a number, got \"fast\" (string)"), std::string::npos) << msg;
  msg = format_error([&] { r.integer("epochs", 1); });
  EXPECT_NE(msg.find("x.json:3: epochs: expected an integer, got 2.5"), std::string::npos) << msg;
  msg = format_error([&] { r.number("p", 0, 0.0, 1.0); });
  EXPECT_NE(msg.find("x.json:3: p: 1.5 is out of range"), std::string::npos) << msg;
  msg = format_error([&] { r.choice("epochs", "cls", {"cls", "mean"}); });
  EXPECT_NE(msg.find("expected a string"), std::string::npos) << msg;
}

TEST(Config, ChoiceListsTheAllowedValues) {
  ConfigDocument doc = ConfigDocument::parse(R"({"pooling": "max"})", "c.json");
  ConfigReader r(doc);
  const std::string msg = format_error([&] { r.choice("pooling", "cls", {"cls", "mean"}); });
  EXPECT_NE(msg.find("c.json:1: pooling: \"max\" is not one of cls, mean"), std::string::npos) << msg;
}

TEST(Config, TaskNamesAreUniqueAndLeaveDomainAndTargetToDomainAdaptation) {
  auto message = [](const std::string& json) {
    return format_error([&] { read_run_config(ConfigDocument::parse(json, "t.json")); });
  };
  EXPECT_NE(message(R"({"tasks": [{"name": "domain", "data": {}}]})").find("t.json:1: tasks.0.name"), std::string::npos);
  EXPECT_NE(message(R"({"task": {"name": "target"}})").find("task.name"), std::string::npos);
  EXPECT_NE(message(R"({"tasks": [{"name": "main", "data": {}}]})").find("is used twice"), std::string::npos);
  EXPECT_NE(message(R"({"tasks": [{"name": "topic", "data": {"pth": "x.csv"}}]})").find("tasks.0.data.pth"),
            std::string::npos);
}

TEST(Config, MalformedJsonNamesLineAndColumn) {
  const std::string msg = format_error([] { ConfigDocument::parse("{\n  \"a\": 1,\n  \"b\": }\n", "bad.json"); });
  EXPECT_NE(msg.find("bad.json:3:8: malformed JSON: syntax error"), std::string::npos) << msg;
  EXPECT_NE(msg.find("malformed JSON"), std::string::npos) << msg;
  EXPECT_NE(format_error([] { ConfigDocument::parse("[1, 2]", "arr.json"); }).find("must be a JSON object"),
            std::string::npos);
  EXPECT_NE(format_error([] { ConfigDocument::parse("", "empty.json"); }).find("empty.json:"), std::string::npos);
}

TEST(Config, OverridesParseJsonOrStringAndAreNamedAsSuch) {
  ConfigDocument doc = ConfigDocument::parse(kRun, "run.json");
  doc.set("optim.lr=5e-5");
  doc.set("model.path=other/dir");
  doc.set("lora.rank=8");  // creates the section
  doc.set("optim.betas=[0.8, 0.9]");
  doc.set("tasks.1.weight=2");
  ConfigReader r(doc);
  EXPECT_DOUBLE_EQ(r.number("optim.lr", 0), 5e-5);
  EXPECT_EQ(r.string("model.path", ""), "other/dir");
  EXPECT_EQ(r.integer("lora.rank", 0), 8);
  EXPECT_EQ(r.numbers("optim.betas", {}), (std::vector<double>{0.8, 0.9}));
  EXPECT_DOUBLE_EQ(r.number("tasks.1.weight", 0), 2.0);
  doc.set("epochs=many");
  const std::string msg = format_error([&] { ConfigReader(doc).integer("epochs", 1); });
  EXPECT_NE(msg.find("--set epochs: expected an integer, got \"many\""), std::string::npos) << msg;
  EXPECT_NE(format_error([&] { doc.set("novalue"); }).find("expected key=value"), std::string::npos);
  EXPECT_NE(format_error([&] { doc.set("epochs.x=1"); }).find("'epochs' is a"), std::string::npos);
}

TEST(Config, LoadsFilesAndRefusesMissingOnes) {
  const std::string path = ::testing::TempDir() + "graft_config_test.json";
  {
    std::ofstream out(path);
    out << kRun;
  }
  ConfigDocument doc = ConfigDocument::load(path);
  EXPECT_EQ(ConfigReader(doc).integer("epochs", 1), 3);
  std::remove(path.c_str());
  EXPECT_THROW(ConfigDocument::load(path), IOError);
}

}  // namespace
}  // namespace graft::cli

namespace graft::cli {
namespace {

// The committed recipes stay valid configs (their keys, types and choices), whatever changes.
TEST(Recipes, EveryRecipeIsAValidRunConfig) {
  const std::filesystem::path dir = std::filesystem::path(GRAFT_TEST_DATA_DIR) / ".." / "recipes";
  int recipes = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW(read_run_config(ConfigDocument::load(entry.path().string())));
    ++recipes;
  }
  EXPECT_GE(recipes, 8);
}

TEST(RunConfigDevice, TrainDeviceReachesTheTrainerAndBadNamesAreErrors) {
  auto read = [](const std::string& json) { return read_run_config(ConfigDocument::parse(json, "run.json")); };
  EXPECT_EQ(read("{}").train.device, "cpu");
  EXPECT_EQ(trainer_options(read("{}")).device, Device::cpu());
  const RunConfig cuda = read(R"({"train": {"device": "cuda:1"}})");
  EXPECT_EQ(trainer_options(cuda).device, Device::cuda(1));
  EXPECT_EQ(to_json(cuda)["train"]["device"], "cuda:1");  // recorded in config.json
  const std::string message = format_error([&] { read(R"({"train": {"device": "gpu"}})"); });
  EXPECT_NE(message.find("run.json:1: train.device"), std::string::npos) << message;
  EXPECT_NE(message.find("expected cpu, cuda or cuda:N"), std::string::npos) << message;
}

}  // namespace
}  // namespace graft::cli
