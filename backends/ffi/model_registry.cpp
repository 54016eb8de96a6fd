#include "model_registry.hpp"

#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ptdcore_ffi {

namespace {

struct Entry {
  std::string content_hash;
  std::weak_ptr<const ptdcore::PreparedModel> model;
};

struct Table {
  std::mutex mutex;
  std::vector<Entry> entries;  // id = index; an id keeps its content hash forever
  std::unordered_map<std::string, int64_t> by_hash;
};

Table& table() {
  static Table t;
  return t;
}

}  // namespace

RegisteredModel register_model(const std::string& content_hash, ptdcore::Structure structure) {
  Table& t = table();
  {
    std::lock_guard<std::mutex> lock(t.mutex);
    auto it = t.by_hash.find(content_hash);
    if (it != t.by_hash.end()) {
      if (auto owned = t.entries[static_cast<size_t>(it->second)].model.lock())
        return RegisteredModel{content_hash, std::move(owned), it->second};
    }
  }
  // Validate and prepare outside the lock (may throw std::invalid_argument).
  auto prepared = std::make_shared<const ptdcore::PreparedModel>(std::move(structure));
  std::lock_guard<std::mutex> lock(t.mutex);
  auto it = t.by_hash.find(content_hash);
  if (it != t.by_hash.end()) {
    Entry& entry = t.entries[static_cast<size_t>(it->second)];
    if (auto owned = entry.model.lock())  // another thread prepared it meanwhile
      return RegisteredModel{content_hash, std::move(owned), it->second};
    entry.model = prepared;  // released before: the same id, prepared again
    return RegisteredModel{content_hash, std::move(prepared), it->second};
  }
  const int64_t id = static_cast<int64_t>(t.entries.size());
  t.entries.push_back(Entry{content_hash, prepared});
  t.by_hash.emplace(content_hash, id);
  return RegisteredModel{content_hash, std::move(prepared), id};
}

RegisteredModel find_model(int64_t id, bool* released) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  if (released) *released = false;
  if (id < 0 || id >= static_cast<int64_t>(t.entries.size())) return {};
  const Entry& entry = t.entries[static_cast<size_t>(id)];
  auto owned = entry.model.lock();
  if (!owned && released) *released = true;
  return RegisteredModel{entry.content_hash, std::move(owned), id};
}

int64_t live_models() {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  int64_t n = 0;
  for (const Entry& e : t.entries) n += e.model.expired() ? 0 : 1;
  return n;
}

}  // namespace ptdcore_ffi
