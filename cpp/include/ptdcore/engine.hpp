// ptdcore engine: everything (the prepared model and batch evaluation).
#pragma once

#include "ptdcore/batch.hpp"
#include "ptdcore/model.hpp"
