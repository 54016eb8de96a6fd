// Process-wide table of prepared models that FFI calls refer to by id.
//
// A jitted program carries a model's id (and its content hash, checked on
// every call) as attributes; the table keeps every registered model alive
// for the life of the process, so a compiled program never outlives what it
// points at. Registration is mutex-protected; lookups return shared owners.
// This is binding state, not engine state: the engine has no globals.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ptdcore/model.hpp"

namespace ptdcore_ffi {

struct RegisteredModel {
  std::string content_hash;
  std::shared_ptr<const ptdcore::PreparedModel> model;
};

// Returns the id of the model with this content hash, registering it if new.
int64_t register_model(const std::string& content_hash, ptdcore::Structure structure);

// The model with this id, or an empty model pointer if unknown.
RegisteredModel find_model(int64_t id);

}  // namespace ptdcore_ffi
