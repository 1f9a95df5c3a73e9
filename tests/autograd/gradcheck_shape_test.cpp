#include <gtest/gtest.h>

#include "autograd/gradcheck_helpers.h"

using namespace graft;
using graft::testing::expect_gradcheck;
using graft::testing::rnd;

TEST(GradcheckShape, Views) {
  manual_seed(20);
  auto x = rnd({2, 3, 4});
  expect_gradcheck([](auto& v) { return v[0].reshape({6, 4}) * 2.0; }, {x});
  expect_gradcheck([](auto& v) { return v[0].view({4, 6}); }, {x});
  expect_gradcheck([](auto& v) { return v[0].permute({2, 0, 1}); }, {x});
  expect_gradcheck([](auto& v) { return v[0].transpose(0, 1).reshape({-1}); }, {x});  // reshape copies here
  expect_gradcheck([](auto& v) { return v[0].narrow(2, 1, 2); }, {x});
  expect_gradcheck([](auto& v) { return v[0].slice(2, 0, 4, 3); }, {x});
  expect_gradcheck([](auto& v) { return v[0].select(1, -1); }, {x});
  expect_gradcheck([](auto& v) { return v[0].unsqueeze(1).expand({2, 5, 3, 4}); }, {x});
  expect_gradcheck([](auto& v) { return v[0].narrow(0, 0, 1).squeeze(0); }, {x});
  expect_gradcheck([](auto& v) { return v[0].flatten(1); }, {x});
  expect_gradcheck([](auto& v) { return v[0].transpose(1, 2).contiguous(); }, {x});
  expect_gradcheck([](auto& v) { return v[0].clone(); }, {x});
}

TEST(GradcheckShape, CatStackSplit) {
  manual_seed(21);
  auto a = rnd({2, 3}), b = rnd({2, 2}), c = rnd({2, 3});
  expect_gradcheck([](auto& v) { return cat({v[0], v[1]}, 1); }, {a, b});
  expect_gradcheck([](auto& v) { return stack({v[0], v[1]}, 1); }, {a, c});
  expect_gradcheck([](auto& v) {
    auto parts = split(v[0], 2, 1);
    return parts[0] * 2.0 + parts[1].sum({1}, true);
  }, {a});
  expect_gradcheck([](auto& v) {
    auto parts = chunk(v[0], 2, 0);
    return parts[1] - parts[0];
  }, {a});
}
