#include "store/arn.h"
#include "store/metadata_store.h"

namespace gust {

namespace {
bool IsVersionNumber(const std::string& q) {
  if (q.empty() || q.size() > 10) return false;
  for (char c : q)
    if (c < '0' || c > '9') return false;
  return true;
}
}  // namespace

Result<FunctionConfig> GetFunctionByQualifier(MetadataStore& store, const std::string& name,
                                              const std::string& qualifier) {
  auto not_found = [&] {
    return Status::NotFound("Function not found: " + FunctionArn(name, qualifier));
  };
  std::string version = qualifier.empty() ? std::string(kLatest) : qualifier;
  if (version != kLatest && !IsVersionNumber(version)) {
    auto alias = store.GetAlias(name, version);
    if (!alias.ok()) return alias.status().code() == Code::kNotFound ? not_found() : alias.status();
    version = alias->version;
  }
  auto config = store.GetFunction(name, version);
  if (!config.ok() && config.status().code() == Code::kNotFound) return not_found();
  return config;
}

}  // namespace gust
