#include "api/run_guarded.h"

#include <spdlog/spdlog.h>

#include <string>

#include "api/lambda_shapes.h"

namespace gust::api {

void ReportEscapedException(const char* what, const http::Responder& responder) {
  spdlog::error("BUG: an exception escaped a worker-pool task (docs/STYLE.md): {}", what);
  responder.Send(ErrorResponse(
      {500, "ServiceException", std::string("internal error in gust (logged as a bug): ") + what}));
}

}  // namespace gust::api
