// Process-wide table of prepared models that FFI calls refer to by id.
//
// A jitted program carries a model's id (and its content hash, checked on
// every call) as attributes. The table holds weak references: a model lives
// as long as somebody owns it (the Python handle that register_model returns,
// kept by the ptdcore model and its jitted functions, or by the backend's
// bounded cache), and its memory is returned when the last owner goes. A call
// that names a released model fails with an error that says so; registering
// the same content again gives the same id back. Registration is
// mutex-protected; lookups return shared owners for the length of a call.
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
  int64_t id = -1;
};

// The model with this content hash (registered, or prepared again if its last
// owner released it), with its id and a shared owner.
RegisteredModel register_model(const std::string& content_hash, ptdcore::Structure structure);

// The model with this id while it is owned; an empty model pointer if the id is
// unknown or its model was released (`released` says which).
RegisteredModel find_model(int64_t id, bool* released = nullptr);

// Ids whose model is still owned (for tests and benchmarks of the memory).
int64_t live_models();

}  // namespace ptdcore_ffi
