// json_bounded.cpp: the linear-time, depth-limited JSON parser of untrusted files (see json_bounded.h).
#include "json_bounded.h"

#include <utility>  // std::move

#include "resnest/error.h"  // resnest::Error

namespace resnest {

JsonBoundedParser::JsonBoundedParser(int max_depth, std::string too_deep_message)
    : max_depth_(max_depth), too_deep_message_(std::move(too_deep_message)) {}

JsonBoundedParser::json JsonBoundedParser::parse(const char* first, const char* last) {
    json result;
    nlohmann::detail::json_sax_dom_parser<json> dom(result, true);
    dom_ = &dom;
    depth_ = 0;
    open_objects_.clear();
    last_top_key_.clear();
    top_keys_.clear();
    found_duplicate_ = false;
    duplicate_key_.clear();
    duplicate_owner_.clear();
    try {
        json::sax_parse(first, last, this);
    } catch (...) {
        dom_ = nullptr;
        throw;
    }
    dom_ = nullptr;
    return result;
}

void JsonBoundedParser::enter() {
    if (++depth_ > max_depth_) throw Error(too_deep_message_);
}

bool JsonBoundedParser::start_object(std::size_t elements) {
    enter();
    open_objects_.push_back({{}, open_objects_.size() == 1 ? last_top_key_ : std::string()});
    return dom_->start_object(elements);
}

bool JsonBoundedParser::key(std::string& value) {
    OpenObject& object = open_objects_.back();
    bool is_new = object.keys.insert(value).second;
    if (open_objects_.size() == 1) {
        last_top_key_ = value;
        if (is_new) top_keys_.push_back(value);
    }
    if (!is_new && !found_duplicate_) {
        found_duplicate_ = true;
        duplicate_key_ = value;
        duplicate_owner_ = open_objects_.size() == 1 ? std::string() : object.owner;
    }
    return dom_->key(value);
}

bool JsonBoundedParser::end_object() {
    --depth_;
    open_objects_.pop_back();
    return dom_->end_object();
}

bool JsonBoundedParser::start_array(std::size_t elements) {
    enter();
    return dom_->start_array(elements);
}

bool JsonBoundedParser::end_array() {
    --depth_;
    return dom_->end_array();
}

}  // namespace resnest
