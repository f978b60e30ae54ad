#include "api/run_guarded.h"

#include <string>

#include "api/lambda_shapes.h"

namespace gust::api {

void ReportEscapedException(const char* what, const http::Responder& responder) {
  LogEscapedException(what);
  responder.Send(ErrorResponse(
      {500, "ServiceException", std::string("internal error in gust (logged as a bug): ") + what}));
}

}  // namespace gust::api
