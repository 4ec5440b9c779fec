#include "io/checkpoint_checksum.h"

#include <algorithm>
#include <bit>

namespace ph {

uint64_t checkpoint_checksum_term(uint64_t index, uint32_t bits) {
  return ckpt::checksum_term(index, bits);
}

namespace ckpt {

uint64_t block_checksum(const float* data, const Block& b) {
  if (b.local == 0) return 0;
  const size_t n = b.shape.size();
  if (n == 0) return checksum_term(0, std::bit_cast<uint32_t>(data[0]));
  std::vector<uint64_t> stride(n, 1);
  for (size_t d = n - 1; d > 0; --d) stride[d - 1] = stride[d] * b.shape[d];
  const uint64_t row_len = b.count[n - 1];
  const auto rows = static_cast<int64_t>(b.local / row_len);
  uint64_t sum = 0;
#pragma omp parallel for reduction(+ : sum) schedule(static) if (b.local >= (1u << 18))
  for (int64_t r = 0; r < rows; ++r) {
    uint64_t rest = static_cast<uint64_t>(r);
    uint64_t start = b.offset[n - 1];
    for (size_t d = n - 1; d-- > 0;) {
      start += (b.offset[d] + rest % b.count[d]) * stride[d];
      rest /= b.count[d];
    }
    const float* row = data + static_cast<uint64_t>(r) * row_len;
    for (uint64_t j = 0; j < row_len; ++j)
      sum += checksum_term(start + j, std::bit_cast<uint32_t>(row[j]));
  }
  return sum;
}

uint64_t checksum_share(hid_t dset, const std::vector<hsize_t>& shape, int rank, int ranks,
                        const std::string& what) {
  const Block all = whole(shape);
  if (all.full == 0) return 0;
  std::vector<float> buf;
  if (shape.empty()) {
    if (rank != 0) return 0;
    buf.resize(1);
    check_h5(H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), what);
    return block_checksum(buf.data(), all);
  }
  const hsize_t rows = shape[0], row_len = all.full / rows;
  const auto p = static_cast<hsize_t>(ranks), r = static_cast<hsize_t>(rank);
  const hsize_t begin = rows / p * r + std::min(r, rows % p);
  const hsize_t end = begin + rows / p + (r < rows % p ? 1 : 0);
  constexpr hsize_t kPieceElements = hsize_t{1} << 22;
  const hsize_t piece_rows = std::max<hsize_t>(1, kPieceElements / row_len);
  buf.resize(std::min(piece_rows, end - begin) * row_len);
  uint64_t sum = 0;
  for (hsize_t first = begin; first < end; first += piece_rows) {
    Block piece = all;
    piece.offset[0] = first;
    piece.count[0] = std::min(piece_rows, end - first);
    piece.local = piece.count[0] * row_len;
    Selection sel = select_block(dset, piece, true, what);
    check_h5(H5Dread(dset, H5T_NATIVE_FLOAT, sel.mem_space.get(), sel.file_space.get(), H5P_DEFAULT,
                     buf.data()),
             what);
    sum += block_checksum(buf.data(), piece);
  }
  return sum;
}

std::vector<uint64_t> sum_over_ranks(std::vector<uint64_t> v, MPI_Comm comm) {
  if (!v.empty())
    MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_UINT64_T, MPI_SUM, comm);
  return v;
}

}  // namespace ckpt
}  // namespace ph
