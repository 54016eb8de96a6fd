#include "model_registry.hpp"

#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ptdcore_ffi {

namespace {

struct Table {
  std::mutex mutex;
  std::vector<RegisteredModel> models;
  std::unordered_map<std::string, int64_t> by_hash;
};

Table& table() {
  static Table t;
  return t;
}

}  // namespace

int64_t register_model(const std::string& content_hash, ptdcore::Structure structure) {
  Table& t = table();
  {
    std::lock_guard<std::mutex> lock(t.mutex);
    auto it = t.by_hash.find(content_hash);
    if (it != t.by_hash.end()) return it->second;
  }
  // Validate and prepare outside the lock (may throw std::invalid_argument).
  auto prepared = std::make_shared<const ptdcore::PreparedModel>(std::move(structure));
  std::lock_guard<std::mutex> lock(t.mutex);
  auto it = t.by_hash.find(content_hash);
  if (it != t.by_hash.end()) return it->second;
  const int64_t id = static_cast<int64_t>(t.models.size());
  t.models.push_back(RegisteredModel{content_hash, std::move(prepared)});
  t.by_hash.emplace(content_hash, id);
  return id;
}

RegisteredModel find_model(int64_t id) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  if (id < 0 || id >= static_cast<int64_t>(t.models.size())) return {};
  return t.models[static_cast<size_t>(id)];
}

}  // namespace ptdcore_ffi
