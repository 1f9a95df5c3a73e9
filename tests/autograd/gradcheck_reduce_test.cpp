#include <gtest/gtest.h>

#include "autograd/gradcheck_helpers.h"

using namespace graft;
using graft::testing::expect_gradcheck;
using graft::testing::rnd;

TEST(GradcheckReduce, SumMeanAnyDims) {
  manual_seed(10);
  auto x = rnd({2, 3, 4});
  expect_gradcheck([](auto& v) { return sum(v[0]); }, {x});
  expect_gradcheck([](auto& v) { return sum(v[0], {1}); }, {x});
  expect_gradcheck([](auto& v) { return sum(v[0], {0, -1}, true); }, {x});
  expect_gradcheck([](auto& v) { return mean(v[0], {2}); }, {x});
  expect_gradcheck([](auto& v) { return mean(v[0], {0, 1}, true); }, {x});
  expect_gradcheck([](auto& v) { return v[0].transpose(0, 2).mean(); }, {x});
}

TEST(GradcheckReduce, MaxMinVar) {
  manual_seed(11);
  auto x = rnd({3, 5});
  expect_gradcheck([](auto& v) { return max(v[0]); }, {x});
  expect_gradcheck([](auto& v) { return min(v[0]); }, {x});
  expect_gradcheck([](auto& v) { return max(v[0], 1).first; }, {x});
  expect_gradcheck([](auto& v) { return min(v[0], 0, true).first; }, {x});
  expect_gradcheck([](auto& v) { return var(v[0], {1}); }, {x});
  expect_gradcheck([](auto& v) { return var(v[0], {}, 0, true); }, {x});
  expect_gradcheck([](auto& v) { return stddev(v[0], {0}); }, {x});
}

TEST(GradcheckReduce, SoftmaxFamily) {
  manual_seed(12);
  auto x = rnd({3, 4, 5});
  for (int64_t dim : {0, 1, -1}) {
    expect_gradcheck([dim](auto& v) { return softmax(v[0], dim); }, {x});
    expect_gradcheck([dim](auto& v) { return log_softmax(v[0], dim); }, {x});
  }
  expect_gradcheck([](auto& v) { return logsumexp(v[0], {1}); }, {x});
}
