// GPT unchanged by the rebuilt model layer, on two ranks: layout dp=1 x tp=2 reproduces the
// curve recorded before the change on that layout (tests/gpt_fixture.h).
#include "tests/gpt_fixture.h"

namespace ph {
namespace {

TEST(GptFixture, TensorParallelCurveMatchesTheRecordedOne) {
  testing::check_against_curve(2, "curve_dp1_tp2.txt");
}

}  // namespace
}  // namespace ph
