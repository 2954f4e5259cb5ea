// json_bounded.h: parses JSON from an untrusted file into nlohmann::json in linear time, refusing nesting
// deeper than a limit as it opens, and reporting the top-level object's keys in file order and the first
// key that appears twice in one object (nlohmann's DOM keeps the last silently).
//
// Why not nlohmann's own entry points: json::parse with a callback rescans the enclosing container at the
// end of every object, quadratic in the entries of one object (a 6.5 MB safetensors header of 100,000
// tensors took 8 minutes); and a value nested deeper than the stack allows cannot be printed, copied or
// compared, because those recurse. This parser feeds nlohmann's plain DOM builder from the SAX events and
// checks the depth on each array or object it opens.
#pragma once
#include <cstddef>  // size_t
#include <set>      // std::set
#include <string>   // std::string
#include <vector>   // std::vector

#include <nlohmann/json.hpp>  // nlohmann::json, nlohmann::detail::json_sax_dom_parser

namespace resnest {

class JsonBoundedParser {
  public:
    using json = nlohmann::json;

    // An array or object opened at nesting depth > max_depth (the top-level value is depth 1) throws
    // resnest::Error(too_deep_message).
    JsonBoundedParser(int max_depth, std::string too_deep_message);

    // Parses [first, last) as one JSON value. Throws nlohmann::json::exception for malformed text (as
    // json::parse does: parse_error, out_of_range for a number too large) and resnest::Error when too deep.
    json parse(const char* first, const char* last);

    // After parse(): the top-level object's keys in file order (each once), and the first key that
    // appeared twice in one object with the top-level key whose value holds that object ("" when the
    // duplicate is a top-level key).
    const std::vector<std::string>& top_keys() const { return top_keys_; }
    bool found_duplicate() const { return found_duplicate_; }
    const std::string& duplicate_key() const { return duplicate_key_; }
    const std::string& duplicate_owner() const { return duplicate_owner_; }

    // SAX events, called by nlohmann::json::sax_parse.
    bool null() { return dom_->null(); }
    bool boolean(bool value) { return dom_->boolean(value); }
    bool number_integer(json::number_integer_t value) { return dom_->number_integer(value); }
    bool number_unsigned(json::number_unsigned_t value) { return dom_->number_unsigned(value); }
    bool number_float(json::number_float_t value, const std::string& text) { return dom_->number_float(value, text); }
    bool string(std::string& value) { return dom_->string(value); }
    bool binary(json::binary_t& value) { return dom_->binary(value); }
    bool start_object(std::size_t elements);
    bool key(std::string& value);
    bool end_object();
    bool start_array(std::size_t elements);
    bool end_array();
    bool parse_error(std::size_t position, const std::string& last_token, const nlohmann::detail::exception& error) {
        return dom_->parse_error(position, last_token, error);
    }

  private:
    struct OpenObject {
        std::set<std::string> keys;
        std::string owner;  // for an object directly under a top-level key: that key
    };
    void enter();

    int max_depth_;
    std::string too_deep_message_;
    nlohmann::detail::json_sax_dom_parser<json>* dom_ = nullptr;
    int depth_ = 0;
    std::vector<OpenObject> open_objects_;
    std::string last_top_key_;
    std::vector<std::string> top_keys_;
    bool found_duplicate_ = false;
    std::string duplicate_key_;
    std::string duplicate_owner_;
};

}  // namespace resnest
