// LambdaApi: the AWS Lambda REST API (the subset boto3, the aws CLI and Zappa
// use for Zip functions) over gust's store and invoker.
//
// Management calls (create, update, publish, aliases...) run on a worker pool
// because they touch SQLite, hash and unzip code; they then post
// Invoker::FunctionChanged to the engine thread. Invoke runs on the engine
// thread, straight into the Invoker — the hot path takes no locks; an
// asynchronous Invoke (InvocationType Event) goes to the AsyncInvoker and is
// answered 202 once the event is durable.
//
// In cluster mode a synchronous Invoke that finds no idle sandbox here may run on another
// node (forwarder.h), with the same answer.
//
// Every error is Lambda-shaped (lambda_shapes.h) and nothing is half-written:
// code is validated before it is stored; the store's calls are transactions.
//
// Thread-safety: Register once before serving; handlers run on the io thread
// (invoke) or the worker pool (everything else).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <nlohmann/json.hpp>

#include <string>

#include "api/api_context.h"
#include "api/lambda_shapes.h"
#include "engine/async_invoker.h"
#include "engine/invoker.h"
#include "http/router.h"
#include "store/blob_store.h"
#include "store/code_bundle.h"
#include "store/metadata_store.h"

namespace gust::api {

class LambdaApi {
 public:
  explicit LambdaApi(const ApiContext& ctx);
  void Register(http::Router& router);

 private:
  using Json = nlohmann::json;
  // Tells the invoker (on the engine thread) that a function changed.
  void Changed(const std::string& function, engine::Invoker::Change change);

  // Worker pool: management calls.
  http::Response CreateFunction(const http::Request& req, const http::RouteMatch& m);
  http::Response GetFunction(const http::Request& req, const http::RouteMatch& m);
  http::Response GetFunctionConfiguration(const http::Request& req, const http::RouteMatch& m);
  http::Response DescribeFunction(const http::RouteMatch& m, bool configuration_only);
  http::Response ListFunctions(const http::Request& req, const http::RouteMatch& m);
  http::Response UpdateCode(const http::Request& req, const http::RouteMatch& m);
  http::Response UpdateConfiguration(const http::Request& req, const http::RouteMatch& m);
  http::Response DeleteFunction(const http::Request& req, const http::RouteMatch& m);
  http::Response PublishVersion(const http::Request& req, const http::RouteMatch& m);
  http::Response ListVersions(const http::Request& req, const http::RouteMatch& m);
  http::Response CreateAlias(const http::Request& req, const http::RouteMatch& m);
  http::Response GetAlias(const http::Request& req, const http::RouteMatch& m);
  http::Response UpdateAlias(const http::Request& req, const http::RouteMatch& m);
  http::Response DeleteAlias(const http::Request& req, const http::RouteMatch& m);
  http::Response ListAliases(const http::Request& req, const http::RouteMatch& m);
  http::Response PutConcurrency(const http::Request& req, const http::RouteMatch& m);
  http::Response GetConcurrency(const http::Request& req, const http::RouteMatch& m);
  http::Response DeleteConcurrency(const http::Request& req, const http::RouteMatch& m);
  // Engine thread: the hot path.
  void Invoke(http::Request&& req, const http::RouteMatch& m, http::Responder responder);

  // Decodes, validates and stores a base64 zip; fills code fields of config.
  // Validates a base64 ZipFile and, unless dry_run, stores and extracts it;
  // sets config's code digest and size either way.
  ApiError StoreCode(const Json& zip_field, FunctionConfig& config, bool dry_run = false);

  boost::asio::io_context& io_;
  boost::asio::thread_pool& workers_;
  MetadataStore& store_;
  BlobStore& blobs_;
  BundleCache& bundles_;
  engine::Invoker& invoker_;
  engine::AsyncInvoker& async_;
  const EngineConfig& config_;    // the memory and timeout ceilings
  const std::string public_url_;  // GetFunction's Code.Location points into it
  Forwarder* const forwarder_;    // cluster mode only
};

}  // namespace gust::api
