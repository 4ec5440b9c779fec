#include "trainer/cli_args.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>

#include "io/config.h"

namespace ph {

bool is_help(const std::string& a) {
  return a == "--help" || a == "-h";
}

Parsed parse_args(const std::vector<std::string>& args, const std::string& cmd,
                  const std::vector<std::string>& known, const std::string& multi_name) {
  Parsed p;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) {
      p.positional.push_back(a);
      continue;
    }
    bool ok = false;
    for (const std::string& k : known) ok = ok || k == a;
    if (!ok)
      throw InputError(cmd + ": unknown option '" + printable(a) + "' (see 'polyhead " + cmd +
                       " --help')");
    if (a == multi_name) {
      size_t j = i + 1;
      while (j < args.size() && args[j].rfind("--", 0) != 0) p.multi.push_back(args[j++]);
      if (j == i + 1) throw InputError(cmd + ": " + a + " needs at least one value");
      i = j - 1;
      continue;
    }
    if (i + 1 >= args.size()) throw InputError(cmd + ": " + a + " needs a value");
    p.options.emplace_back(a, args[++i]);
  }
  return p;
}

const std::string* option(const Parsed& p, const std::string& name) {
  const std::string* found = nullptr;
  for (const auto& [k, v] : p.options)
    if (k == name) found = &v;
  return found;
}

std::vector<std::string> options(const Parsed& p, const std::string& name) {
  std::vector<std::string> values;
  for (const auto& [k, v] : p.options)
    if (k == name) values.push_back(v);
  return values;
}

std::vector<std::string> read_input_lines(const std::string& cmd, const std::string& name,
                                          const std::string* path) {
  std::vector<std::string> lines;
  std::string line;
  if (path) {
    std::ifstream in(*path, std::ios::binary);
    if (!in)
      throw InputError(cmd + ": cannot open " + name + " '" + printable(*path) +
                       "': " + std::strerror(errno));
    while (std::getline(in, line)) lines.push_back(line);
  } else {
    while (std::getline(std::cin, line)) lines.push_back(line);
  }
  for (std::string& l : lines)
    if (!l.empty() && l.back() == '\r') l.pop_back();
  return lines;
}

long to_long(const std::string& cmd, const std::string& name, const std::string& v, long lo,
             long hi) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || x < lo || x > hi)
    throw InputError(cmd + ": " + name + " expects an integer in [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "], got '" + printable(v) + "'");
  return x;
}

double to_double(const std::string& cmd, const std::string& name, const std::string& v, double lo,
                 double hi) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !(x >= lo && x <= hi))
    throw InputError(cmd + ": " + name + " expects a number in [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "], got '" + printable(v) + "'");
  return x;
}

}  // namespace ph
